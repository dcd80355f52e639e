"""Seconds per fine-tuning step on a small and a larger folder (issue 36: a 10-image folder was 4x slower).

    OMP_NUM_THREADS=1 python bench/finetune_steps.py --work outputs/finetune-steps

For each folder size (``--sizes``, default 10 and 100 scenes of ``clipseg.data.shapes.shift``):
``clipseg prepare folder``, then ``clipseg fit --config configs/finetune.yaml`` twice, for ``--short``
and ``--long`` steps (batch 4, one loader worker, no validation). The time per step is the
difference of the two wall times over the difference of steps, so start-up (imports, model load,
first worker) cancels out. It also times a pass of ``ShardStream`` over the train split alone (a pass
over a one-shard split used to end with datasets' 5 s thread-shutdown sleep). Prints a line per size
and writes ``<work>/results.json``.

Not a ``*_bench.py``: it trains for minutes, so ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from clipseg.data.shapes.shift import ShiftConfig, write_folder
from clipseg.data.streaming import ShardStream

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "finetune.yaml"
SCENES = ShiftConfig(size=96, radius=(0.12, 0.2), min_objects=2, max_objects=3)


def _fit_seconds(data: Path, runs: Path, steps: int) -> float:
    command = [
        *(sys.executable, "-m", "clipseg.cli", "fit", "--config", str(CONFIG)),
        *("--data.init_args.data_dir", str(data), "--output_root", str(runs), "--name", f"s{steps}"),
        *("--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(10 * steps)),
        *("--trainer.limit_val_batches", "0", "--trainer.logger", "false"),
        *("--data.init_args.batch_size", "4", "--data.init_args.num_workers", "1"),
        *("--checkpoint.every_n_train_steps", str(10 * steps), "--overwrite", "true"),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _pass_seconds(data: Path) -> float:
    """Mean wall time of three passes of the shuffled train stream, as training reads it."""
    stream = ShardStream(source=str(data), split="train", shuffle_buffer=1000, train=True)
    start = time.perf_counter()
    for _ in range(3):
        for _ in stream:
            pass
    return (time.perf_counter() - start) / 3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("outputs/finetune-steps"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=40)
    args = parser.parse_args()
    results = {}
    for size in args.sizes:
        raw, data = args.work / f"raw-{size}", args.work / f"data-{size}"
        write_folder(raw, size, seed=0, config=SCENES)
        subprocess.run(
            [sys.executable, "-m", "clipseg.cli", "prepare", "folder", "--src", str(raw), "--out", str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stream_pass = _pass_seconds(data)
        short = _fit_seconds(data, args.work / f"runs-{size}", args.short)
        long = _fit_seconds(data, args.work / f"runs-{size}", args.long)
        per_step = (long - short) / (args.long - args.short)
        results[size] = {
            "stream_pass_s": round(stream_pass, 3),
            "short_s": round(short, 2),
            "long_s": round(long, 2),
            "s_per_step": round(per_step, 3),
        }
        print(
            f"{size} scenes: {per_step:.3f} s/step ({args.short} steps {short:.1f} s, {args.long} steps "
            f"{long:.1f} s); one pass of the train stream {stream_pass:.2f} s"
        )
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
