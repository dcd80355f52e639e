"""Fine-tune shapes-tiny on a domain-shifted shapes folder with the three documented user commands; measure.

    OMP_NUM_THREADS=1 python bench/finetune_shift.py --work outputs/finetune-shift

1. writes ``--scenes`` training scenes and ``--heldout`` held-out scenes of ``clipseg.data.shapes_shift``
   (an annotated folder each; the held-out one with one absent-object prompt per image);
2. runs, as a user would: ``clipseg prepare folder``, ``clipseg fit --config configs/finetune.yaml
   --model.init_from shapes-tiny ...`` and ``clipseg predict --model <run>/model.safetensors``;
3. prints (and writes to ``<work>/results.json``) held-out text mIoU@0.5 and absent-prompt marked
   pixels before → after, the original shapes quality before → after (forgetting; the mean over the
   five acceptance seeds of ``clipseg.quality``), and wall times.

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

from clipseg import load_model
from clipseg.data.shapes_shift import write_folder
from clipseg.quality import folder_quality, shapes_quality_over_seeds

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "finetune.yaml"
BASE_MODEL = "shapes-tiny"


def _run(command: list[str]) -> float:
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def _measure(model: str, heldout: Path, quality_scenes: int) -> dict[str, float]:
    predictor = load_model(model)
    folder = folder_quality(predictor, heldout)
    shapes = shapes_quality_over_seeds(predictor, n=quality_scenes)
    return {
        "heldout_text_miou": folder["text_miou"],
        "heldout_absent_marked_fraction": folder["absent_marked_fraction"],
        "shapes_text_miou": shapes["text_miou"],
        "shapes_visual_miou": shapes["visual_miou"],
        "shapes_absent_marked_fraction": shapes["absent_marked_fraction"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("outputs/finetune-shift"))
    parser.add_argument("--scenes", type=int, default=300, help="training scenes (train + val folder)")
    parser.add_argument("--heldout", type=int, default=100, help="held-out scenes")
    parser.add_argument(
        "--quality-scenes", type=int, default=200, help="original shapes scenes per acceptance seed (5 seeds)"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    raw, heldout, prepared = args.work / "raw", args.work / "heldout", args.work / "prepared"
    write_folder(raw, args.scenes, seed=1)
    write_folder(heldout, args.heldout, seed=2, absent_prompts=True)
    before = _measure(BASE_MODEL, heldout, args.quality_scenes)
    print("before:", json.dumps(before, indent=1), flush=True)
    clipseg = [sys.executable, "-m", "clipseg.cli"]
    model = args.work / "run" / "model.safetensors"
    example = sorted((heldout / "images").glob("*.png"))[0]
    commands = {  # the three commands of the README, as a user types them
        "prepare_s": f"prepare folder --src {raw} --out {prepared} --workers {args.workers}",
        "fit_s": f"fit --config {CONFIG} --model.init_from {BASE_MODEL} --data.init_args.data_dir {prepared} "
        f"--output_root {args.work} --name run",
        "predict_s": f"predict {example} --prompt 'red circle' --model {model} --out {args.work / 'predict'}",
    }
    times = {key: _run([*clipseg, *shlex.split(line)]) for key, line in commands.items()}
    after = _measure(str(model), heldout, args.quality_scenes)
    results = {
        "before": before,
        "after": after,
        "times": times,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    for key in before:
        print(f"{key}: {before[key]:.4f} -> {after[key]:.4f}")
    print(", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
