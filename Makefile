# One virtualenv for everything; torch is pinned to the local CPU wheel (see pyproject.toml).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST  := $(BIN)/python -m pytest

.PHONY: install demo test test-slow lint format bench bench-gpu eval-all zoo-shapes-tiny clean

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

# Load figures of `clipseg serve` with locust (60 s at 8 and 32 users, torch and ONNX int8), then the soak.
.PHONY: bench-serve-load
bench-serve-load: install
	$(BIN)/python bench/serve_load.py
	$(BIN)/python bench/serve_soak.py

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache wandb lightning_logs results outputs
