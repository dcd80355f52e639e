"""Scenes whose objects are known pixel for pixel, to check what a written mask contains.

Drawn here (PIL, no anti-aliasing) rather than taken from the shapes stream, so each test states
its objects and where they are; colors are the shapes dataset's, which the shipped model knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from clipseg.data.shapes.scenes import COLORS

SIZE = 128
SCENE_BACKGROUND = (120, 128, 124)
# A prepared visual prompt (paper Sec. 4.3): the object fills the frame up to 10 % context on each
# side, on a background darkened to 10 %.
CUTOUT_BACKGROUND = (12, 13, 12)
CUTOUT_FILL = 1 / 1.2


@dataclass(frozen=True)
class Thing:
    """A ``color`` ``shape`` centered at (``cx``, ``cy``) px with circumradius ``r`` px."""

    color: str
    shape: str
    cx: float
    cy: float
    r: float

    @property
    def phrase(self) -> str:
        return f"{self.color} {self.shape}"


def _outline(thing: Thing) -> list[tuple[float, float]]:
    cx, cy, r = thing.cx, thing.cy, thing.r
    if thing.shape == "square":  # axis-aligned, half-side r / sqrt(2)
        h = r / np.sqrt(2)
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if thing.shape == "triangle":  # equilateral, apex up
        return [(cx, cy - r), (cx + r * np.sqrt(3) / 2, cy + r / 2), (cx - r * np.sqrt(3) / 2, cy + r / 2)]
    raise ValueError(f"unknown shape {thing.shape!r}")


def coverage(thing: Thing, size: int = SIZE) -> np.ndarray:
    """``size x size`` bool: the pixels ``thing`` paints."""
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if thing.shape == "circle":
        draw.ellipse((thing.cx - thing.r, thing.cy - thing.r, thing.cx + thing.r, thing.cy + thing.r), fill=1)
    else:
        draw.polygon(_outline(thing), fill=1)
    return np.asarray(canvas, dtype=bool)


def draw_scene(
    things: tuple[Thing, ...], *, size: int = SIZE, background: tuple[int, int, int] = SCENE_BACKGROUND
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(image size x size x 3 uint8, [size x size bool mask per thing])``; things must not overlap."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background
    masks = [coverage(thing, size) for thing in things]
    assert not np.any(np.sum(masks, axis=0) > 1), "scene objects overlap"
    for thing, mask in zip(things, masks):
        image[mask] = COLORS[thing.color]
    return image, masks


def cutout(color: str, shape: str, *, size: int = SIZE) -> np.ndarray:
    """A ``size x size x 3`` support image already made into a visual prompt: one object, dark surround."""
    # Circumradius that makes the object's bounding box CUTOUT_FILL of the frame: its longer side is
    # 2 r (circle), sqrt(2) r (square), sqrt(3) r (triangle, 1.5 r high).
    extent = {"circle": 2.0, "square": np.sqrt(2), "triangle": np.sqrt(3)}[shape]
    r = CUTOUT_FILL * size / extent
    cy = size / 2 + (r / 4 if shape == "triangle" else 0.0)  # center the triangle's bounding box
    image, _ = draw_scene((Thing(color, shape, size / 2, cy, r),), size=size, background=CUTOUT_BACKGROUND)
    return image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
