# One virtualenv for everything, installed with the exact versions of constraints.txt (torch: the
# local CPU wheel); pyproject.toml only states the supported ranges.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST  := $(BIN)/python -m pytest
# The "newest" venv: torch as in constraints.txt, every other dependency at its newest release.
VENV_NEWEST ?= .venv-newest
NEWEST  := $(VENV_NEWEST)/bin
TORCH   := $(shell grep -E '^torch==' constraints.txt)
# torchvision is left out: the registry's wheels are CUDA builds that do not load with the CPU torch.

.PHONY: install install-newest demo test test-slow test-newest lint format bench bench-gpu eval-all \
	zoo-shapes-tiny shapes-tiny-v2 clean

STAMP   := $(VENV)/.installed

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installed once; again only when the dependencies change. `make -B install` forces it. The
# constraints pin torch too, so pip never resolves an unpinned torch (a multi-GB CUDA build).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,dev]'
	touch $@

install: $(STAMP)

# Always upgraded: "newest" means what the registry serves today. torch stays on the pinned wheel
# (named as a requirement, so the eager upgrade cannot replace it).
install-newest:
	test -x $(NEWEST)/python || $(PY) -m venv $(VENV_NEWEST)
	$(NEWEST)/python -m pip install -q --upgrade pip
	$(NEWEST)/python -m pip install -q '$(TORCH)'
	$(NEWEST)/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[all,dev]' '$(TORCH)'
	$(NEWEST)/python -m pip freeze --exclude-editable > $(VENV_NEWEST)/versions.txt

demo: install
	$(BIN)/clipseg predict src/clipseg/assets/example.png --prompt "red square" \
		--prompt "blue circle" --prompt "purple triangle" --model shapes-tiny --out outputs/demo --overwrite

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(PYTEST)

test-slow: install
	$(PYTEST) -m slow

# The default test run (the browser test included) against the newest releases; the versions it ran
# with are in $(VENV_NEWEST)/versions.txt.
test-newest: install-newest
	@echo "newest job runs with:" $$(grep -iE '^(torch|transformers|tokenizers|huggingface.hub|gradio|fastapi|lightning|datasets|onnxruntime)==' $(VENV_NEWEST)/versions.txt)
	$(NEWEST)/python -m pytest

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

# shapes-tiny v2, the shipped one (docs/shapes-tiny.md): from v1 (the file shipped before v2, taken from
# git), two stages on the varied shapes world, the result blended half-way back to v1's weights, the
# presence calibration, then the before -> after table. One core, about 50 min on the shared machine.
V1_COMMIT := 579bb6c
shapes-tiny-v2: install
	mkdir -p outputs/shapes-tiny-v2
	git show $(V1_COMMIT):src/clipseg/zoo/shipped/shapes-tiny.safetensors > outputs/shapes-tiny-v1.safetensors
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2.yaml
	$(BIN)/clipseg zoo export --ckpt outputs/shapes-tiny-v2/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2/stage1.safetensors
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2-tail.yaml
	$(BIN)/clipseg zoo export --ckpt outputs/shapes-tiny-v2-tail/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2/v2.safetensors
	$(BIN)/python -c "from clipseg.training.finetune import blend_files; blend_files( \
		'outputs/shapes-tiny-v2/v2.safetensors', 'outputs/shapes-tiny-v1.safetensors', 0.5, \
		'outputs/shapes-tiny-v2/blend/shapes-tiny.safetensors')"
	$(BIN)/clipseg prepare shapes --splits val --out outputs/shapes-val
	$(BIN)/clipseg calibrate --model outputs/shapes-tiny-v2/blend/shapes-tiny.safetensors --data outputs/shapes-val \
		--limit 1000 --out outputs/shapes-tiny-v2/shapes-tiny.safetensors
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_robustness.py --model outputs/shapes-tiny-v1.safetensors \
		--model outputs/shapes-tiny-v2/shapes-tiny.safetensors --model outputs/shapes-tiny-v2/v2.safetensors

clean:
	rm -rf $(VENV) $(VENV_NEWEST) .pytest_cache .ruff_cache wandb lightning_logs results outputs
