"""A fourth shapes renderer, for evaluation only: "<colour> <shape>" as a person draws it in a slides tool.

Written without looking at the other renderers' drawing code (the training world, ``shapes.shift``,
``bench/shapes_third.py``); it shares only the prompt words (``scenes.COLORS`` / ``SHAPES`` names) and the
folder writer (``shapes.shift.write_folder``). Nothing here is trained or tuned on. Its own choices:

- canvas: width and height each drawn from 160-320 px (not square in general);
- colours: each colour word is one of a few named colours a person would pick for it from CSS, Google
  Slides or Office palettes (``PALETTES``), with a small brightness change per object;
- shapes: exact signed distances (circle; square and equilateral triangle as convex polygons) at any
  rotation, anti-aliased by coverage ``clip(0.5 - distance, 0, 1)``; the size is an equal-area radius of
  5-18 % of the shorter side, so the three shapes of one radius cover the same area;
- style per object: optionally an inside outline of 1-3 px (thinner below a radius of 20 px) in a darker tone of the fill, a soft vertical
  fill gradient (the "gradient fill" preset of slide tools), and a soft drop shadow (one light direction
  per scene) that darkens the background and is not part of the object;
- backgrounds (``BACKGROUNDS``): a slide (white or light grey, a faint vignette), paper (warm off-white,
  fibres and grain), linen canvas (a woven grid), a tiled floor (rotated grid of neutral tiles and grout),
  and a bokeh photo (a dark-to-mid gradient with soft light discs of low saturation);
- 1-4 objects, distinct (colour, shape) pairs, never overlapping (their bounding circles, shadows
  included, keep a gap); a mask is the object's coverage >= 0.5, i.e. signed distance <= 0.

Deterministic by seed: every random draw comes from the one ``numpy.random.Generator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from clipseg.data.shapes import shift as shapes_shift
from clipseg.data.shapes.scenes import COLORS, SHAPES

# Named colours (RGB) a person would call by the colour word: CSS names, Google Slides / Office swatches.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": ((255, 0, 0), (220, 20, 60), (234, 67, 53), (204, 0, 0)),  # red, crimson, Google red, dark red 1
    "green": (
        (34, 139, 34),
        (0, 128, 0),
        (50, 205, 50),
        (52, 168, 83),
    ),  # forestgreen, green, limegreen, Google
    "blue": (
        (65, 105, 225),
        (0, 0, 255),
        (30, 144, 255),
        (66, 133, 244),
    ),  # royalblue, blue, dodgerblue, Google
    "yellow": ((255, 215, 0), (255, 255, 0), (255, 230, 40), (241, 194, 50)),  # gold, yellow, lemon, Slides
    "purple": ((128, 0, 128), (153, 50, 204), (102, 51, 153), (142, 68, 173)),  # purple, darkorchid, rebecca
    "orange": ((255, 140, 0), (255, 165, 0), (237, 125, 49), (230, 126, 34)),  # darkorange, orange, Office
}
RADIUS = (0.05, 0.18)  # equal-area radius, fraction of the shorter canvas side
CANVAS = (160, 320)  # width and height range, px
MAX_OBJECTS = 4
GAP = 3.0  # px between the bounding circles (shadows included) of two objects
# Circumradius of each shape over its equal-area radius: square sqrt(pi/2), triangle sqrt(4 pi / 3 sqrt 3).
_BOUND = {
    "circle": 1.0,
    "square": float(np.sqrt(np.pi / 2)),
    "triangle": float(np.sqrt(4 * np.pi / (3 * np.sqrt(3)))),
}
_CORNERS = {"square": 4, "triangle": 3}


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise ``[H, W]`` in about [-1, 1]: a random grid of ``cell`` px, bicubically upsampled."""
    grid = rng.uniform(-1, 1, size=(max(2, int(h / cell) + 2), max(2, int(w / cell) + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC), dtype=np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each ``[H, W]`` float32."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return x, y


def _slide(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    x, y = _grid(h, w)
    base = rng.choice([255.0, 250.0, 243.0, 236.0])
    falloff = ((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * rng.uniform(0, 40)
    return np.repeat((base - falloff)[..., None], 3, axis=2)


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    tint = np.array([rng.uniform(238, 250), rng.uniform(230, 244), rng.uniform(212, 232)], np.float32)
    fibres = _smooth_noise(rng, h, w, cell=rng.uniform(12, 30)) * rng.uniform(3, 8)
    grain = rng.normal(0, rng.uniform(1.5, 3.5), size=(h, w)).astype(np.float32)
    return tint + (fibres + grain)[..., None]


def _canvas(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    x, y = _grid(h, w)
    tint = np.array([rng.uniform(200, 235)] * 3, np.float32) - np.array([0, 4, 14], np.float32)
    period = rng.uniform(2.5, 5.0)
    weave = np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period) * rng.uniform(6, 14)
    slubs = _smooth_noise(rng, h, w, cell=rng.uniform(6, 16)) * rng.uniform(3, 8)
    return tint + (weave + slubs)[..., None]


def _tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    x, y = _grid(h, w)
    angle = rng.uniform(0, np.pi / 2)
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    size = rng.uniform(18, 48)
    iu, iv = np.floor(u / size).astype(int), np.floor(v / size).astype(int)
    tones = np.array([rng.uniform(150, 215, 3), rng.uniform(150, 215, 3)], np.float32)
    tones = tones.mean(axis=1, keepdims=True) * 0.8 + tones * 0.2  # near-neutral stone / ceramic tones
    image = tones[(iu + iv) % 2]
    # Each tile a little lighter or darker: a lookup by tile index from one random table.
    shade = rng.uniform(-8, 8, size=(64, 64)).astype(np.float32)
    image = image + shade[iu % 64, iv % 64][..., None]
    grout_width = rng.uniform(1.0, 2.5)
    in_grout = (np.minimum(u % size, v % size) < grout_width)[..., None]
    return np.where(in_grout, image * 0.6, image)


def _bokeh(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    x, y = _grid(h, w)
    # A dim, nearly grey gradient (a tint of +-10 per channel): a night photo, not a colour-word region.
    top = rng.uniform(30, 90) + rng.uniform(-10, 10, 3)
    bottom = rng.uniform(80, 150) + rng.uniform(-10, 10, 3)
    t = (y / h)[..., None]
    image = (top * (1 - t) + bottom * t).astype(np.float32)
    for _ in range(int(rng.integers(8, 20))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, 30)
        grey = rng.uniform(170, 250)
        light = grey + rng.uniform(-25, 25, 3)  # low saturation: lights, not objects of a colour word
        disc = np.clip((r - np.hypot(x - cx, y - cy)) / rng.uniform(2, 6), 0, 1) * rng.uniform(0.12, 0.35)
        image = image * (1 - disc[..., None]) + light * disc[..., None]
    return image


BACKGROUNDS = {"slide": _slide, "paper": _paper, "canvas": _canvas, "tiles": _tiles, "bokeh": _bokeh}


def _polygon_distance(x: np.ndarray, y: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Exact signed distance ``[H, W]`` (px, negative inside) to a convex polygon ``corners [K, 2]``."""
    distance = np.full(x.shape, np.inf, np.float32)
    inside = np.ones(x.shape, bool)
    for k in range(len(corners)):
        (ax, ay), (bx, by) = corners[k], corners[(k + 1) % len(corners)]
        ex, ey = bx - ax, by - ay
        wx, wy = x - ax, y - ay
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        distance = np.minimum(distance, np.hypot(wx - t * ex, wy - t * ey))
        # Corners go counter-clockwise in (x, y): inside is left of every edge (cross product >= 0).
        inside &= ex * wy - ey * wx >= 0
    return np.where(inside, -distance, distance)


def shape_distance(
    shape: str, cx: float, cy: float, radius: float, angle: float, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Signed distance ``[H, W]`` in px (negative inside) of one shape of equal-area ``radius`` at ``(cx, cy)``."""
    if shape == "circle":
        return np.hypot(x - cx, y - cy) - radius
    bound = radius * _BOUND[shape]
    turns = angle + 2 * np.pi * np.arange(_CORNERS[shape]) / _CORNERS[shape]
    corners = np.stack([cx + bound * np.cos(turns), cy + bound * np.sin(turns)], axis=1)
    return _polygon_distance(x, y, corners)


def _place(
    rng: np.random.Generator, h: int, w: int, shapes: list[str], margin: float
) -> list[tuple[float, float, float] | None]:
    """``(cx, cy, radius)`` per shape, inside the canvas and apart; None for a shape that found no room."""
    bounds: list[tuple[float, float, float]] = []  # cx, cy, bounding radius (margin included)
    out: list[tuple[float, float, float] | None] = []
    for shape in shapes:
        spot = None
        for _ in range(100):
            radius = rng.uniform(*RADIUS) * min(h, w)
            bound = radius * _BOUND[shape] + margin
            cx, cy = rng.uniform(bound, w - bound), rng.uniform(bound, h - bound)
            if all(np.hypot(cx - px, cy - py) > bound + pb + GAP for px, py, pb in bounds):
                bounds.append((cx, cy, bound))
                spot = (cx, cy, radius)
                break
        out.append(spot)
    return out


def _fill(
    rng: np.random.Generator, colour: str, distance: np.ndarray, y: np.ndarray, cy: float, radius: float
) -> np.ndarray:
    """The object's colour ``[H, W, 3]``: a palette tone, maybe a vertical gradient, maybe an inside outline."""
    tone = np.array(PALETTES[colour][int(rng.integers(len(PALETTES[colour])))], np.float32)
    tone = tone * rng.uniform(0.92, 1.05)
    gradient = rng.uniform(0.06, 0.14) if rng.random() < 0.3 else 0.0
    fill = tone * (1 + gradient * (cy - y) / radius)[..., None]  # lighter at the top
    if rng.random() < 0.5:
        width = rng.uniform(1.0, 3.0) * min(1.0, radius / 20)  # thinner on small objects, as drawn
        on_line = np.clip(distance + width + 0.5, 0, 1)[..., None]
        fill = fill * (1 - on_line) + tone * rng.uniform(0.45, 0.65) * on_line
    return fill


def render_scene(rng: np.random.Generator) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """One scene: image ``[H, W, 3]`` uint8 and a boolean mask ``[H, W]`` per ``(colour, shape)`` drawn."""
    w, h = (int(v) for v in rng.integers(CANVAS[0], CANVAS[1] + 1, size=2))
    background = list(BACKGROUNDS.values())[int(rng.integers(len(BACKGROUNDS)))]
    image = background(rng, h, w).astype(np.float32)
    x, y = _grid(h, w)
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    chosen = [
        pairs[i] for i in rng.choice(len(pairs), size=int(rng.integers(1, MAX_OBJECTS + 1)), replace=False)
    ]
    light = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(2, 6)
    shadow_dx, shadow_dy = offset * np.cos(light), offset * np.sin(light)
    spots = _place(rng, h, w, [shape for _, shape in chosen], margin=offset + 4)
    objects = []
    for (colour, shape), spot in zip(chosen, spots):
        if spot is not None:
            cx, cy, radius = spot
            objects.append((colour, shape, cx, cy, radius, rng.uniform(0, 2 * np.pi), rng.random() < 0.4))
    # Shadows first, all of them: an object is never under another's shadow (they are placed apart).
    for _, shape, cx, cy, radius, angle, shadowed in objects:
        if shadowed:
            d = shape_distance(shape, cx + shadow_dx, cy + shadow_dy, radius, angle, x, y)
            shade = np.clip(0.5 - d / rng.uniform(2, 5), 0, 1) * rng.uniform(0.25, 0.45)
            image *= 1 - shade[..., None]
    masks = {}
    for colour, shape, cx, cy, radius, angle, _ in objects:
        distance = shape_distance(shape, cx, cy, radius, angle, x, y)
        cover = np.clip(0.5 - distance, 0, 1)[..., None]
        image = image * (1 - cover) + _fill(rng, colour, distance, y, cy, radius) * cover
        masks[(colour, shape)] = distance <= 0
    return image.clip(0, 255).round().astype(np.uint8), masks


def write_folder(out: str | Path, n: int, *, seed: int, absent_prompts: bool = False) -> Path:
    """``n`` scenes as an annotated folder (``clipseg prepare folder``'s format); returns its annotation file."""
    return shapes_shift.write_folder(out, n, seed=seed, absent_prompts=absent_prompts, render=render_scene)
