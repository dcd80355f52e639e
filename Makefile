# One virtualenv for everything; torch is pinned to the local CPU wheel (see pyproject.toml).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST  := $(BIN)/python -m pytest

.PHONY: install demo test test-slow lint format bench bench-gpu eval-all zoo-shapes-tiny shapes-tiny-v2 clean

STAMP   := $(VENV)/.installed

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installed once; again only when pyproject.toml (the dependencies) changes. `make -B install` forces it.
$(STAMP): pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/clipseg predict src/clipseg/assets/example.png --prompt "red square" \
		--prompt "blue circle" --prompt "purple triangle" --model shapes-tiny --out outputs/demo --overwrite

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(PYTEST)

test-slow: install
	$(PYTEST) -m slow

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format:
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python bench/run.py

# The paper's training step fed by the loader vs from memory, inference images/s, peak GPU memory
# (on the GPU when there is one; a CPU runs it with a smaller batch).
bench-gpu: install
	$(BIN)/python bench/gpu_bench.py

eval-all: install
	$(BIN)/clipseg eval-all --out results

zoo-shapes-tiny: install
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny.yaml
	$(BIN)/clipseg zoo export --ckpt outputs/shapes-tiny/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny/stage1.safetensors
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-twins.yaml
	$(BIN)/clipseg zoo export --ckpt outputs/shapes-tiny-twins/checkpoints/last.ckpt --name shapes-tiny \
		--out zoo --quality-scenes 200

# shapes-tiny v2 from the shipped v1, on the varied shapes world, then the before -> after table
# (docs/shapes-tiny.md; not shipped: 0.011 below v1 on the original renderer). One core, ~25-55 min.
shapes-tiny-v2: install
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2.yaml
	$(BIN)/clipseg zoo export --ckpt outputs/shapes-tiny-v2/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2/v2.safetensors
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_robustness.py --model shapes-tiny \
		--model outputs/shapes-tiny-v2/v2.safetensors

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache wandb lightning_logs results outputs
