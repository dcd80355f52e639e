"""A domain-shifted shapes world, written as a folder for ``clipseg prepare folder``: a fine-tuning benchmark.

Against the shapes world that ``shapes-tiny`` was trained on (``clipseg.data.shapes.scenes``), scenes here have
a larger canvas (192 px against 128), smaller objects (radius 5–12 % of the side against 6–19 %), more
of them (2–5), busier backgrounds (stripes, checkerboards, strong blotches instead of muted gradients)
and colours jittered in hue and lighting (±30 per channel and a 0.8–1.1 brightness factor, against
±12). Objects are rasterized with the shapes world's own coverage maps, so masks stay pixel exact.

``write_folder`` writes ``images/``, ``masks/`` and ``annotations.csv`` (``image,mask,prompt``): one row
per colour + shape present ("red circle", the union of all such objects). ``absent_prompts=True``
adds, per image, one colour + shape that is not in it with an empty mask (for evaluation).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clipseg.data.shapes.drawing import free_spot, rasterize
from clipseg.data.shapes.scenes import COLORS, SHAPES

ANNOTATION_HEADER = ("image", "mask", "prompt")
# A scene renderer: generator -> (image S x S x 3 uint8, {(color, shape): S x S bool mask}).
Renderer = Callable[[np.random.Generator], tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]]


@dataclass(frozen=True)
class ShiftConfig:
    """How shifted scenes are drawn (see the module docstring for the defaults' rationale)."""

    size: int = 192
    radius: tuple[float, float] = (0.05, 0.12)
    min_objects: int = 2
    max_objects: int = 5
    color_jitter: int = 30
    brightness: tuple[float, float] = (0.8, 1.1)


def _muted(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(50, 210) + rng.uniform(-25, 25, size=3)


def shifted_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size x size x 3`` uint8: stripes, a checkerboard or strong blotches, in muted colours, with grain."""
    a, b = _muted(rng), _muted(rng)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # stripes at a random angle
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 28)
        t = (np.sin((np.cos(angle) * x + np.sin(angle) * y) * 2 * np.pi / period) > 0).astype(np.float32)
    elif kind == 1:  # checkerboard
        cell = int(rng.integers(8, 24))
        t = ((x // cell + y // cell) % 2).astype(np.float32)
    else:  # blotches: coarse noise, upsampled
        coarse = rng.uniform(0, 1, size=(8, 8)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC)).clip(0, 1)
    image = (1 - t[..., None]) * a + t[..., None] * b + rng.normal(0, 6, size=(size, size, 1))
    return image.clip(0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator, config: ShiftConfig = ShiftConfig()
) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """A scene and the mask of each colour + shape in it: ``(image S x S x 3 uint8, {(color, shape): S x S bool})``."""
    size = config.size
    image = shifted_background(rng, size)
    masks: dict[tuple[str, str], np.ndarray] = {}
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
        color, shape = str(rng.choice(list(COLORS))), str(rng.choice(SHAPES))
        r = rng.uniform(*config.radius) * size
        spot = free_spot(rng, r, size, placed, attempts=30)
        if spot is None:
            continue
        cx, cy = spot
        placed.append((cx, cy, r))
        coverage = rasterize(shape, cx, cy, r, rng.uniform(-0.4, 0.4), size)
        jitter = rng.integers(-config.color_jitter, config.color_jitter + 1, 3)
        rgb = (np.array(COLORS[color]) + jitter) * rng.uniform(*config.brightness)
        image[coverage] = rgb.clip(0, 255).astype(np.uint8)
        masks[(color, shape)] = masks.get((color, shape), np.zeros((size, size), bool)) | coverage
    return image, masks


def write_folder(
    out: str | Path,
    n: int,
    *,
    seed: int,
    config: ShiftConfig = ShiftConfig(),
    absent_prompts: bool = False,
    render: Renderer | None = None,
) -> Path:
    """Write ``n`` scenes to ``out`` (``images/``, ``masks/``, ``annotations.csv``); returns the CSV path.

    ``render`` draws a scene from a generator as ``render_scene`` does (default: ``render_scene`` with
    ``config``), so other renderers of the same vocabulary write the same format.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    for index in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        image, masks = render_scene(rng, config) if render is None else render(rng)
        name = f"images/{index:05d}.png"
        Image.fromarray(image).save(out / name)
        if absent_prompts:
            absent = [p for p in itertools.product(COLORS, SHAPES) if p not in masks]
            pick = absent[int(rng.integers(len(absent)))]
            masks[pick] = np.zeros(image.shape[:2], dtype=bool)
        for (color, shape), mask in sorted(masks.items()):
            mask_name = f"masks/{index:05d}-{color}-{shape}.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(out / mask_name)
            rows.append((name, mask_name, f"{color} {shape}"))
    path = out / "annotations.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ANNOTATION_HEADER)
        writer.writerows(rows)
    return path
