"""A third shapes renderer, for evaluation only: scenes drawn by other code than the two in ``clipseg.data``.

Neither ``clipseg.data.shapes.scenes`` (training) nor ``clipseg.data.shapes.shift`` (the fine-tuning benchmark)
draws like this, and nothing in the project was chosen by looking at its scenes: it only reports. Its
own choices, as a paint program or another person's script would make them:

- canvas 176–288 px; backgrounds are linear or radial two-colour gradients or a "paper" tone with a
  vignette, all with Gaussian sensor noise;
- the colours of MS Paint's default palette (not the training world's RGB values), ±15 per channel;
- objects drawn by PIL at 4 x supersampling and box-filtered down (anti-aliased edges), squares and
  triangles at any angle, radius 6–16 % of the side, 1–4 objects, 3 px apart;
- the mask of an object is where its supersampled coverage is at least one half.

``write_folder`` writes the annotated-folder format of ``clipseg prepare folder`` (via
``clipseg.data.shapes.shift.write_folder``), one row per colour + shape present and, with
``absent_prompts``, one absent colour + shape per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clipseg.data.shapes import shift as shapes_shift

# MS Paint's palette: what "red" is when someone picks it from a paint program.
PAINT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (237, 28, 36),
    "green": (34, 177, 76),
    "blue": (63, 72, 204),
    "yellow": (255, 242, 0),
    "purple": (163, 73, 164),
    "orange": (255, 127, 39),
}
SUPERSAMPLE = 4


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size x size x 3`` float32: a gradient (linear or radial) or a vignetted paper tone, with noise."""
    low, high = sorted(rng.uniform(40, 235, size=2))
    a = low + rng.uniform(-20, 20, size=3)
    b = high + rng.uniform(-20, 20, size=3)
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * x + np.sin(angle) * y
        t = (t - t.min()) / np.ptp(t)
    elif kind == 1:
        cx, cy = rng.uniform(0, 1, size=2)
        t = np.clip(np.hypot(x - cx, y - cy) / rng.uniform(0.6, 1.2), 0, 1)
    else:
        t = np.clip(np.hypot(x - 0.5, y - 0.5) * 1.4, 0, 1) ** 2 * rng.uniform(0.2, 0.5)
        a = b  # one tone, darkened towards the corners
        b = b * 0.6
    image = (1 - t[..., None]) * a + t[..., None] * b
    return image + rng.normal(0, rng.uniform(3, 9), size=(size, size, 1))


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = 4 if shape == "square" else 3
    return [
        (cx + r * np.cos(angle + 2 * np.pi * k / corners), cy + r * np.sin(angle + 2 * np.pi * k / corners))
        for k in range(corners)
    ]


def _alpha(shape: str, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """``size x size`` float32 coverage in [0, 1] of one object, drawn at ``SUPERSAMPLE`` x and box-filtered."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    s = SUPERSAMPLE
    if shape == "circle":
        draw.ellipse(((cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s), fill=255)
    else:
        draw.polygon([(px * s, py * s) for px, py in _polygon(shape, cx, cy, r, angle)], fill=255)
    return np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float32) / 255


def render_scene(rng: np.random.Generator) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """A scene and the mask of each colour + shape in it: ``(image S x S x 3 uint8, {(color, shape): S x S bool})``."""
    size = int(rng.integers(176, 289))
    image = _background(rng, size)
    masks: dict[tuple[str, str], np.ndarray] = {}
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 5))):
        r = rng.uniform(0.06, 0.16) * size
        for _attempt in range(40):
            cx, cy = rng.uniform(r + 2, size - r - 2, size=2)
            if all(np.hypot(cx - px, cy - py) > r + pr + 3 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        color = str(rng.choice(list(PAINT_COLORS)))
        shape = str(rng.choice(["circle", "square", "triangle"]))
        # A square's corners turn by up to 45 degrees; a triangle points anywhere.
        angle = rng.uniform(0, np.pi / 2) if shape == "square" else rng.uniform(0, 2 * np.pi)
        alpha = _alpha(shape, cx, cy, r, angle, size)[..., None]
        rgb = np.asarray(PAINT_COLORS[color], np.float32) + rng.integers(-15, 16, 3)
        image = (1 - alpha) * image + alpha * rgb
        masks[(color, shape)] = masks.get((color, shape), np.zeros((size, size), bool)) | (
            alpha[..., 0] >= 0.5
        )
    return image.clip(0, 255).round().astype(np.uint8), masks


def write_folder(out: str | Path, n: int, *, seed: int, absent_prompts: bool = False) -> Path:
    """Write ``n`` scenes to ``out`` (``images/``, ``masks/``, ``annotations.csv``); returns the CSV path."""
    return shapes_shift.write_folder(out, n, seed=seed, absent_prompts=absent_prompts, render=render_scene)
