"""Draw the docs' side-by-side picture (docs/sharp-masks.md) of plain vs refined masks: ``docs/refine.png``.

A 512² high-resolution shapes scene (``clipseg.data.shapes.hires``), ``shapes-tiny``, one prompt; the
panels show a crop around the target: the image, then the predicted probabilities (white = 1) of
``refine="none"`` (plain bilinear upsampling), ``refine="guided"`` and ``tiles=True`` +
``refine="guided"``, each with the true object's outline in red.

    python bench/refine_figure.py [--seed N] [--index I] [--out docs/refine.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clipseg import load_model
from clipseg.data.shapes.hires import hires_scene
from clipseg.eval.refine_quality import inner_band

PANEL = 200  # crop side in scene pixels; panels are drawn at 1:1 so the edges are as predicted
VARIANTS = (
    ("plain (none)", {}),
    ("guided", {"refine": "guided"}),
    ("tiles + guided", {"refine": "guided", "tiles": True}),
)


def _crop_box(alpha: np.ndarray) -> tuple[int, int]:
    """Top-left corner of a ``PANEL`` crop centred on the target."""
    ys, xs = np.nonzero(alpha >= 0.5)
    size = alpha.shape[0]
    y = int(np.clip(ys.mean() - PANEL / 2, 0, size - PANEL))
    x = int(np.clip(xs.mean() - PANEL / 2, 0, size - PANEL))
    return y, x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--index", type=int, default=6)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "refine.png"
    )
    args = parser.parse_args()
    predictor = load_model("shapes-tiny", device="cpu")
    scene = hires_scene(args.seed, args.index)
    y, x = _crop_box(scene["alpha"])
    window = (slice(y, y + PANEL), slice(x, x + PANEL))
    outline = inner_band(scene["alpha"] >= 0.5, 1)[window]
    panels = [("image", scene["image"][window])]
    for title, options in VARIANTS:
        prob = predictor.predict(scene["image"], scene["text"], **options)[0][window]
        gray = np.repeat((prob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
        gray[outline] = (230, 40, 40)
        panels.append((title, gray))
    gap, header = 6, 18
    canvas = Image.new("RGB", (len(panels) * (PANEL + gap) - gap, PANEL + header), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (title, panel) in enumerate(panels):
        left = k * (PANEL + gap)
        canvas.paste(Image.fromarray(panel), (left, header))
        draw.text((left + 4, 3), title if k else f"image: {scene['text']!r}", fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
