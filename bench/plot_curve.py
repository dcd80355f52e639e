"""Draw a training curve from a Lightning ``CSVLogger`` file: ``docs/shapes-tiny-v2-curve.png``.

Left: the training loss (every logged step, and its mean over the last 100 steps); right: validation
mIoU@0.5 (and the training batches' mIoU@0.5 for comparison). Several files (a run and its resumes,
or its stages) are read in order as one run: a file whose steps start again from 0 (the next stage,
a fresh ``fit``) continues from the previous file's last step. A file needs a ``step`` column and any
of the plotted ones.

    python bench/plot_curve.py outputs/shapes-tiny-v2/csv/metrics.csv --out docs/shapes-tiny-v2-curve.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after the backend is chosen
import numpy as np


def step_offsets(paths: list[Path]) -> list[int]:
    """What to add to each file's steps: the last step so far for a file that starts below it."""
    offsets, end = [], 0
    for path in paths:
        with path.open() as handle:
            steps = [int(row["step"]) for row in csv.DictReader(handle)]
        offsets.append(end if steps and min(steps) < end else 0)
        end = max([end, *(step + offsets[-1] for step in steps)])
    return offsets


def read_series(paths: list[Path], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of the rows of ``metrics.csv`` files where ``key`` is logged, by step."""
    points = {}
    for path, offset in zip(paths, step_offsets(paths), strict=True):
        with path.open() as handle:
            rows = csv.DictReader(handle)
            points |= {int(row["step"]) + offset: float(row[key]) for row in rows if row.get(key)}
    steps = np.asarray(sorted(points))
    return steps, np.asarray([points[step] for step in steps])


def trailing_mean(steps: np.ndarray, values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the values logged within the last ``window`` steps of each point (logs may be uneven)."""
    return np.asarray([values[(steps > step - window) & (steps <= step)].mean() for step in steps])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "metrics", type=Path, nargs="+", help="metrics.csv of a CSVLogger (several: in order)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/shapes-tiny-v2-curve.png"))
    parser.add_argument("--title", default="shapes-tiny v2 (configs/shapes-tiny-v2.yaml)")
    args = parser.parse_args()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps, loss = read_series(args.metrics, "train/loss")
    left.plot(steps, loss, color="0.75", label="train loss")
    left.plot(steps, trailing_mean(steps, loss, 100), label="mean of the last 100 steps")
    left.set(xlabel="step", ylabel="loss", title="training loss (all terms)")
    left.legend()
    for key, label in (("val/miou_0.5", "val (plain scenes)"), ("train/miou_0.5", "train batches")):
        x, y = read_series(args.metrics, key)
        right.plot(x, y, marker="o" if key.startswith("val") else None, label=label)
    right.set(xlabel="step", ylabel="mIoU@0.5", title="mIoU@0.5")
    right.legend()
    figure.suptitle(args.title)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=100)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
