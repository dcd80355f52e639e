"""Draw a training curve from a Lightning ``CSVLogger`` file: ``docs/shapes-tiny-v2-curve.png``.

Left: the training loss (every logged step, and a running mean over 8 logs); right: validation
mIoU@0.5 (and the training batches' mIoU@0.5 for comparison).

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


def read_series(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of the rows of a ``metrics.csv`` where ``key`` is logged."""
    steps, values = [], []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row.get(key):
                steps.append(int(row["step"]))
                values.append(float(row[key]))
    return np.asarray(steps), np.asarray(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metrics", type=Path, help="metrics.csv of a CSVLogger")
    parser.add_argument("--out", type=Path, default=Path("docs/shapes-tiny-v2-curve.png"))
    parser.add_argument("--title", default="shapes-tiny v2 (configs/shapes-tiny-v2.yaml)")
    args = parser.parse_args()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps, loss = read_series(args.metrics, "train/loss")
    left.plot(steps, loss, color="0.75", label="train loss")
    window = min(8, len(loss))
    if window:
        left.plot(
            steps[window - 1 :], np.convolve(loss, np.ones(window) / window, "valid"), label="running mean"
        )
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
