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

.PHONY: install install-newest demo test test-slow test-newest lint format docs bench bench-gpu eval-all \
	zoo-shapes-tiny calibrate-shapes-tiny shapes-tiny-v2 shapes-tiny-v2.1 shapes-tiny-v2.2 \
	shapes-tiny-v2.3 shapes-tiny-v2.4 shapes-tiny-v2.5 \
	shapes-tiny-v2.6 shapes-tiny-v2.7 clean

STAMP   := $(VENV)/.installed

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installed once; again only when the dependencies change. `make -B install` forces it. The
# constraints pin torch too, so pip never resolves an unpinned torch (a multi-GB CUDA build).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[all,dev,docs]'
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
	$(BIN)/ruff check src tests bench docs/*.py
	$(BIN)/ruff format --check src tests bench docs/*.py
	$(PYTEST)

test-slow: install
	$(PYTEST) -m slow

# The default test run (the browser test included) against the newest releases; the versions it ran
# with are in $(VENV_NEWEST)/versions.txt.
test-newest: install-newest
	@echo "newest job runs with:" $$(grep -iE '^(torch|transformers|tokenizers|huggingface.hub|gradio|fastapi|lightning|datasets|onnxruntime)==' $(VENV_NEWEST)/versions.txt)
	$(NEWEST)/python -m pytest

lint: install
	$(BIN)/ruff check src tests bench docs/*.py
	$(BIN)/ruff format --check src tests bench docs/*.py

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns every warning (a broken link, a
# page missing from the nav, a docstring mkdocstrings cannot read) into a failure. NO_MKDOCS_2_WARNING:
# mkdocs-material's end-of-life banner says nothing about this site.
docs: install
	$(BIN)/python docs/architecture_svg.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

format:
	$(BIN)/ruff format src tests bench docs/*.py
	$(BIN)/ruff check --fix src tests bench docs/*.py

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

# The shipped shapes-tiny from scratch: v1 (configs/shapes-tiny.yaml, then configs/shapes-tiny-twins.yaml;
# about 2 h on 2 cores), then v2 from that v1 (`make shapes-tiny-v2`), which writes zoo/shapes-tiny.safetensors.
zoo-shapes-tiny: install
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny.yaml
	$(BIN)/clipseg zoo pack --ckpt outputs/shapes-tiny/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny/stage1.safetensors
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-twins.yaml
	$(BIN)/clipseg zoo pack --ckpt outputs/shapes-tiny-twins/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v1.safetensors
	$(MAKE) shapes-tiny-v2 V1_FROM_GIT=no

# The presence calibration of the shipped shapes-tiny (issue 34): 4000 val scenes of seed 0, rich in
# hard negatives (30 % absent prompts, 70 % of them a missing shape in a colour the scene has: the
# case the presence head learns), written into the shipped file (its card's sha256 follows). Alone:
# `make calibrate-shapes-tiny`, ~3 min on one core.
calibrate-shapes-tiny: install
	$(BIN)/clipseg prepare shapes --out outputs/shapes-presence --splits val --option seed=0 \
		--option size=128 --option length=4000 --option negative_prob=0.3 --option hard_absent_prob=0.7
	OMP_NUM_THREADS=1 $(BIN)/clipseg calibrate --model zoo/shapes-tiny.safetensors \
		--data outputs/shapes-presence --limit 4000 --out zoo/shapes-tiny.safetensors

# shapes-tiny v2, the shipped one (docs/shapes-tiny.md): from v1 (by default the file shipped before v2,
# taken from git; `make zoo-shapes-tiny` passes the v1 it has just trained), two stages on the varied
# shapes world, the result blended half-way back to v1's weights into zoo/, the presence calibration,
# then the before -> after table. One core, about 50 min on the shared machine. The card's measured
# numbers are the table's original-renderer column (5 seeds x 200 scenes).
V1_COMMIT   := 579bb6c
V1_FROM_GIT ?= yes
shapes-tiny-v2: install
	mkdir -p outputs/shapes-tiny-v2
	if [ "$(V1_FROM_GIT)" = yes ]; then git show $(V1_COMMIT):src/clipseg/zoo/shipped/shapes-tiny.safetensors \
		> outputs/shapes-tiny-v1.safetensors; fi
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2.yaml
	$(BIN)/clipseg zoo pack --ckpt outputs/shapes-tiny-v2/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2/stage1.safetensors
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2-tail.yaml
	$(BIN)/clipseg zoo pack --ckpt outputs/shapes-tiny-v2-tail/checkpoints/last.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2/v2.safetensors
	$(BIN)/python -c "from clipseg.training.finetune_output import blend_files; blend_files( \
		'outputs/shapes-tiny-v2/v2.safetensors', 'outputs/shapes-tiny-v1.safetensors', 0.5, \
		'zoo/shapes-tiny.safetensors')"
	$(MAKE) calibrate-shapes-tiny
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_robustness.py --model outputs/shapes-tiny-v1.safetensors \
		--model zoo/shapes-tiny.safetensors --model outputs/shapes-tiny-v2/v2.safetensors

# The runs after v2 start from v2: by default the file shipped as v2, taken from git
# (`make zoo-shapes-tiny` passes V2_FROM_GIT=no: the v2 that `make shapes-tiny-v2` has just written).
V2_COMMIT   := 331ad9a
V2_FROM_GIT ?= yes
GET_V2 = mkdir -p outputs && if [ "$(V2_FROM_GIT)" = yes ]; then git show $(V2_COMMIT):src/clipseg/zoo/shipped/shapes-tiny.safetensors \
	> outputs/shapes-tiny-v2.safetensors; else cp zoo/shapes-tiny.safetensors outputs/shapes-tiny-v2.safetensors; fi

# RESIZE: a model file moved to another input size (the vision position embedding resampled).
RESIZE = $(BIN)/python -c "import sys; from clipseg.training.finetune_output import resize_file; \
	resize_file(sys.argv[1], int(sys.argv[2]), sys.argv[3])"

# RUN_FROM,<run>,<start model>,<--step N ...>: configs/<run>.yaml (which starts from <start model>), then its
# candidates (the steps as trained and blended with the start) chosen by #35's rule into
# outputs/<run>/chosen.safetensors (not the zoo).
define RUN_FROM
	mkdir -p outputs/$(1)
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/$(1).yaml
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_candidates.py --run outputs/$(1) --base $(2) $(3) \
		--chosen outputs/$(1)/chosen.safetensors
endef

# RUN_AT_SIZE,<run>,<input px>,<--step N ...>: v2 moved to the input size (v2-<px>: the run's start and
# the base of its blends), then RUN_FROM.
define RUN_AT_SIZE
	$(GET_V2)
	$(RESIZE) outputs/shapes-tiny-v2.safetensors $(2) outputs/shapes-tiny-v2-$(2).safetensors
	$(call RUN_FROM,$(1),outputs/shapes-tiny-v2-$(2).safetensors,$(3))
endef

# shapes-tiny v2.2, the best candidate, not shipped (docs/shapes-tiny.md): one run (v2.1's world at a
# 128 px input, from v2 with its position embedding resampled to the 16 x 16 grid: v2-128, also the
# base of the blends); steps 750 and 1500, as trained and blended with v2-128, chosen by #35's rule on
# the original and shifted renderers only (bench/shapes_candidates.py) into
# outputs/shapes-tiny-v2.2/chosen.safetensors (not the zoo), then the before -> after table. One
# core: 55 min of training on the shared machine, then ~20 min of measuring.
shapes-tiny-v2.2: install
	$(call RUN_AT_SIZE,shapes-tiny-v2.2,128,--step 750 --step 1500)
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_robustness.py --model outputs/shapes-tiny-v2.safetensors \
		--model outputs/shapes-tiny-v2.2/chosen.safetensors

# shapes-tiny v2.4, tried (docs/shapes-tiny.md): the v2.2 run at a 160 px input, from v2 moved to
# 160 px (v2-160); steps 450 and 900, as trained and blended with v2-160, chosen by #35's rule into
# outputs/ (not the zoo). One core: 44 min on the shared machine, then ~10 min of measuring.
shapes-tiny-v2.4: install
	$(call RUN_AT_SIZE,shapes-tiny-v2.4,160,--step 450 --step 900)

# shapes-tiny v2.5, tried (docs/shapes-tiny.md): v2.2's chosen model trained on with every pose in every
# scene (data.plain_rotation); steps 600 and 1200. Runs v2.2 first if its chosen file is missing. One
# core: 25 min of training on a quiet machine, then ~10 min of measuring.
shapes-tiny-v2.5: install
	test -f outputs/shapes-tiny-v2.2/chosen.safetensors || $(MAKE) shapes-tiny-v2.2
	$(call RUN_FROM,shapes-tiny-v2.5,outputs/shapes-tiny-v2.2/chosen.safetensors,--step 600 --step 1200)

# shapes-tiny v2.6 and v2.7, tried (docs/shapes-tiny.md): v2.5's chosen model trained on with more
# same-colour scenes (twins 80 % / 100 %, hard absent prompts 50 % / 70 %); steps 600 and 1200. One core
# each: 28 min of training beside each other, then ~10 min of measuring.
shapes-tiny-v2.6 shapes-tiny-v2.7: install
	test -f outputs/shapes-tiny-v2.5/chosen.safetensors || $(MAKE) shapes-tiny-v2.5
	$(call RUN_FROM,$@,outputs/shapes-tiny-v2.5/chosen.safetensors,--step 600 --step 1200)

# shapes-tiny v2.1, tried and not shipped (docs/shapes-tiny.md): one run from the shipped v2 on v2's
# world with turns through every pose and radial / vignetted backgrounds, step 2500's weights blended
# half-way back to v2's into outputs/ (not the zoo), then the before -> after table. One core, ~40 min.
shapes-tiny-v2.1: install
	mkdir -p outputs/shapes-tiny-v2.1
	$(GET_V2)
	OMP_NUM_THREADS=1 $(BIN)/clipseg fit --config configs/shapes-tiny-v2.1.yaml
	$(BIN)/clipseg zoo pack --ckpt outputs/shapes-tiny-v2.1/steps/step=2500.ckpt --name shapes-tiny \
		--out outputs/shapes-tiny-v2.1/trained.safetensors
	$(BIN)/python -c "from clipseg.training.finetune_output import blend_files; blend_files( \
		'outputs/shapes-tiny-v2.1/trained.safetensors', 'outputs/shapes-tiny-v2.safetensors', 0.5, \
		'outputs/shapes-tiny-v2.1/v2.1.safetensors')"
	OMP_NUM_THREADS=1 $(BIN)/python bench/shapes_robustness.py --model outputs/shapes-tiny-v2.safetensors \
		--model outputs/shapes-tiny-v2.1/v2.1.safetensors --model outputs/shapes-tiny-v2.1/trained.safetensors

# shapes-tiny v2.3, tried and not shipped (docs/shapes-tiny.md): v2.1's run plus distillation from v2
# on the plain scenes; the step (1250 or 2500) and blend with v2 (none, 0.3, 0.5) chosen by #35's rule
# on the original and shifted renderers only, copied to outputs/ (not the zoo). One core: 51 min on
# the shared machine, then ~10 min of measuring.
shapes-tiny-v2.3: install
	$(GET_V2)
	$(call RUN_FROM,shapes-tiny-v2.3,outputs/shapes-tiny-v2.safetensors,--step 1250 --step 2500)

clean:
	rm -rf $(VENV) $(VENV_NEWEST) .pytest_cache .ruff_cache wandb lightning_logs results outputs site
