"""Drawing primitives of the plain shapes world (``shapes.scenes``), shared by the other shapes worlds
(``shapes.shift``, ``shapes.hires``): the muted background, an object's outline and its exact
coverage, and the one placement loop (``free_spot``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def plain_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``size x size x 3`` uint8 background: muted solid or gradient, optionally textured.

    Built on a coarse grid and upsampled (smooth content, so nothing is lost) because full-resolution
    float work dominated generation time.
    """
    grid = 16

    def muted() -> np.ndarray:
        return rng.uniform(60, 200) + rng.uniform(-20, 20, size=3)

    kind = rng.integers(3)
    if kind == 0:
        coarse = np.broadcast_to(muted(), (grid, grid, 3))
    else:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * np.arange(grid)[None, :] + np.sin(angle) * np.arange(grid)[:, None]
        t = ((ramp - ramp.min()) / np.ptp(ramp))[..., None]
        coarse = (1 - t) * muted() + t * muted()
    textured = kind == 2 or rng.random() < 0.3
    if textured:  # low-frequency blotches
        coarse = coarse + rng.normal(0, 10, size=(grid, grid, 1))
    image = Image.fromarray(coarse.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    if not textured:
        return np.array(image)
    grain = rng.integers(-4, 5, size=(size, size, 1), dtype=np.int16)  # fine grain, shared by channels
    return (np.asarray(image, dtype=np.int16) + grain).clip(0, 255).astype(np.uint8)


def outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]] | None:
    """Polygon vertices for square/triangle (``None`` for a circle, drawn as an ellipse)."""
    if shape == "circle":
        return None
    corners = 4 if shape == "square" else 3
    # A square of circumradius r has half-side r/√2; start angles put a flat edge at the bottom.
    start = np.pi / 4 if corners == 4 else -np.pi / 2
    return [
        (
            cx + r * np.cos(start + angle + 2 * np.pi * k / corners),
            cy + r * np.sin(start + angle + 2 * np.pi * k / corners),
        )
        for k in range(corners)
    ]


def rasterize(shape: str, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """The ``size x size`` bool coverage of one object (no anti-aliasing: the painted pixels exactly)."""
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    corners = outline(shape, cx, cy, r, angle)
    if corners is None:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
    else:
        draw.polygon(corners, fill=1)
    return np.asarray(canvas, dtype=bool)


def free_spot(
    rng: np.random.Generator,
    r: float,
    size: int,
    placed: list[tuple[float, float, float]],
    attempts: int = 20,
    *,
    margin: float | None = None,
    gap: float = 2.0,
) -> tuple[float, float] | None:
    """A center for an object of radius ``r``, ``gap`` px clear of every ``placed`` (cx, cy, r): the one
    placement loop of every shapes world.

    Centers are drawn at least ``margin`` (default ``r + 1``) from the canvas edges. Rejection sampling:
    ``None`` when ``attempts`` random centers all collide.
    """
    margin = r + 1 if margin is None else margin
    for _ in range(attempts):
        cx, cy = rng.uniform(margin, size - margin, size=2)
        if all(np.hypot(cx - px, cy - py) > r + pr + gap for px, py, pr in placed):
            return float(cx), float(cy)
    return None
