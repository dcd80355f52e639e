"""Fine-tune shapes-tiny on a domain-shifted shapes folder with the three documented user commands; measure.

    OMP_NUM_THREADS=1 python bench/finetune_shift.py --work outputs/finetune-shift [--renderer third]

1. writes ``--scenes`` training scenes and ``--heldout`` held-out scenes of ``--renderer``: ``shift``
   (``clipseg.data.shapes.shift``, where the defaults of configs/finetune.yaml are chosen) or ``third``
   (``bench/shapes_third.py``, which plays no part in choosing them) or ``fourth``
   (``bench/shapes_fourth.py``, written without seeing the others); an annotated folder each, the
   held-out one with one absent-object prompt per image;
2. runs, as a user would: ``clipseg prepare folder``, ``clipseg fit --config configs/finetune.yaml
   --model.init_from shapes-tiny ...`` (plus ``--fit-args``, to try a recipe) and ``clipseg predict``;
3. prints (and writes to ``<work>/results.json``) held-out text mIoU@0.5 and absent-prompt marked
   pixels before → after, the original shapes quality before → after (forgetting; the mean over the
   five acceptance seeds of ``clipseg.eval.quality``), and wall times;
4. with ``--blends 0,0.25,...``: the same numbers for the run's trained weights (its last checkpoint)
   blended with the base model's at each weight (``clipseg.training.finetune_output.blend_with_base``,
   what ``PackModel``'s ``base_weight`` writes), from one training run.

Not a ``*_bench.py``: it trains for minutes, so ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import shapes_fourth
import shapes_third
from shapes_robustness import measure

from clipseg import load_model
from clipseg.data.shapes import shift as shapes_shift
from clipseg.training.finetune_output import blend_with_base
from clipseg.training.pack import module_from_checkpoint, pack_module

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "finetune.yaml"
# Each renderer's folder writer and (training, held-out) seeds; bench/shapes_robustness.py uses the same
# held-out seeds.
RENDERERS = {
    "shift": (shapes_shift.write_folder, 1, 2),
    "third": (shapes_third.write_folder, 4, 3),
    "fourth": (shapes_fourth.write_folder, 6, 5),
}


def _run(command: list[str]) -> float:
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


_KEYS = (
    "heldout/text_miou",
    "heldout/absent_marked_fraction",
    "original/text_miou",
    "original/visual_miou",
    "original/absent_marked_fraction",
)


def _measure(model: str, heldout: Path, quality_scenes: int) -> dict[str, float]:
    scores = measure(load_model(model), {"heldout": heldout}, quality_scenes)
    return {key: scores[key] for key in _KEYS}


def _blended(run: Path, base_model: str, base_weight: float) -> Path:
    """The model file of ``run``'s last checkpoint blended with ``base_model`` at ``base_weight``."""
    module = module_from_checkpoint(run / "checkpoints" / "last.ckpt")
    blend_with_base(module.model, base_model, base_weight)
    return pack_module(module, run / f"blend-{base_weight:g}.safetensors", "blend")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("outputs/finetune-shift"))
    parser.add_argument("--scenes", type=int, default=300, help="training scenes (train + val folder)")
    parser.add_argument("--heldout", type=int, default=100, help="held-out scenes")
    parser.add_argument(
        "--quality-scenes", type=int, default=200, help="original shapes scenes per acceptance seed (5 seeds)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--renderer", choices=sorted(RENDERERS), default="shift")
    parser.add_argument("--base-model", default="shapes-tiny", help="zoo name or model file to fine-tune")
    parser.add_argument("--fit-args", default="", help="more `clipseg fit` arguments (a recipe to try)")
    parser.add_argument(
        "--blends", default="", help="comma-separated base weights to measure the trained weights blended at"
    )
    args = parser.parse_args()
    raw, heldout, prepared = args.work / "raw", args.work / "heldout", args.work / "prepared"
    write_folder, train_seed, heldout_seed = RENDERERS[args.renderer]
    write_folder(raw, args.scenes, seed=train_seed)
    write_folder(heldout, args.heldout, seed=heldout_seed, absent_prompts=True)
    before = _measure(args.base_model, heldout, args.quality_scenes)
    print("before:", json.dumps(before, indent=1), flush=True)
    clipseg = [sys.executable, "-m", "clipseg.cli"]
    model = args.work / "run" / "model.safetensors"
    example = sorted((heldout / "images").glob("*.png"))[0]
    commands = {  # the three commands of the README, as a user types them
        "prepare_s": f"prepare folder --src {raw} --out {prepared} --workers {args.workers}",
        "fit_s": f"fit --config {CONFIG} --model.init_from {args.base_model} --data.init_args.data_dir {prepared} "
        f"--output_root {args.work} --name run {args.fit_args}",
        "predict_s": f"predict {example} --prompt 'red circle' --model {model} --out {args.work / 'predict'}",
    }
    times = {key: _run([*clipseg, *shlex.split(line)]) for key, line in commands.items()}
    after = _measure(str(model), heldout, args.quality_scenes)
    blends = {
        weight: _measure(
            str(_blended(model.parent, args.base_model, float(weight))), heldout, args.quality_scenes
        )
        for weight in filter(None, args.blends.split(","))
    }
    results = {
        "before": before,
        "after": after,
        "blends": blends,
        "times": times,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    for key in before:
        print(f"{key}: {before[key]:.4f} -> {after[key]:.4f}")
    for weight, scores in blends.items():
        print(f"blend {weight}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print(", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
