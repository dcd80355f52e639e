"""How a shapes model's masks depend on an object's pose: IoU by turn angle, one object per scene.

    OMP_NUM_THREADS=1 python bench/shapes_pose.py --model shapes-tiny --model outputs/x.safetensors \\
        --out docs/shapes-tiny-pose.png

Each scene is one object, drawn by the training world's own ``rasterize`` on a flat grey 128 px canvas,
in one of the six colours, at a small and a large radius (0.12 and 0.22 of the side), turned from its
upright pose (a flat edge at the bottom) in 15 degree steps through its symmetry (90 degrees for a
square, 120 for a triangle; circles are the control). The prompt is "<colour> <shape>"; a cell is the
mean IoU@0.5 over colours and both radii. A model that knows a square only upright scores ~0 at 45
degrees. Prints a markdown table; ``--out`` plots IoU against the angle, one line per model and shape.
Not a ``*_bench.py``: ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after the backend is chosen
import numpy as np

from clipseg import load_model
from clipseg.data.shapes.drawing import rasterize
from clipseg.data.shapes.scenes import COLORS
from clipseg.eval.quality import iou
from clipseg.inference import Predictor

SIZE = 128
RADII = (0.12, 0.22)  # of the side
SYMMETRY = {"square": 90, "triangle": 120, "circle": 90}  # degrees after which the pose repeats
BACKGROUND = (170, 170, 170)
STEP = 15  # degrees between poses


def pose_scores(predictor: Predictor, shape: str, step: int = STEP) -> dict[int, float]:
    """``{angle in degrees: mean IoU@0.5}`` of ``shape`` turned through its symmetry."""
    scores = {}
    for angle in range(0, SYMMETRY[shape], step):
        ious = []
        for color, rgb in COLORS.items():
            for radius in RADII:
                coverage = rasterize(shape, SIZE / 2, SIZE / 2, radius * SIZE, np.deg2rad(angle), SIZE)
                image = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
                image[coverage] = rgb
                ious.append(iou(predictor.predict(image, [f"{color} {shape}"])[0] > 0.5, coverage))
        scores[angle] = float(np.mean(ious))
    return scores


def label(model: str) -> str:
    """A short name: the zoo name, or a file's path without ``outputs/`` and the suffix (runs keep
    ``<run>/chosen.safetensors``)."""
    path = Path(model)
    if path.suffix != ".safetensors":
        return model
    return str(path.with_suffix("")).removeprefix("outputs/")


def plot(rows: dict[str, dict[str, dict[int, float]]], out: Path) -> None:
    """IoU against the angle: one panel per shape, one line per model."""
    fig, axes = plt.subplots(1, len(SYMMETRY), figsize=(4 * len(SYMMETRY), 3.2), sharey=True)
    for ax, shape in zip(axes, SYMMETRY, strict=True):
        for model, shapes in rows.items():
            angles = sorted(shapes[shape])
            ax.plot(angles, [shapes[shape][a] for a in angles], marker="o", label=label(model))
        ax.set_title(f"{shape} (repeats every {SYMMETRY[shape]}°)")
        ax.set_xlabel("turn from upright, degrees")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("IoU@0.5")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="zoo name or model file (repeat)")
    parser.add_argument("--out", type=Path, help="write the plot here (PNG)")
    args = parser.parse_args()
    rows = {model: {s: pose_scores(load_model(model), s) for s in SYMMETRY} for model in args.model}
    angles = range(0, max(SYMMETRY.values()), STEP)
    print("| model | shape | " + " | ".join(f"{a}°" for a in angles) + " |")
    print("|---|---|" + "---|" * len(angles))
    for model, shapes in rows.items():
        for shape, scores in shapes.items():
            cells = [f"{scores[a]:.2f}" if a in scores else "" for a in angles]
            print(f"| {label(model)} | {shape} | " + " | ".join(cells) + " |")
    if args.out:
        plot(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
