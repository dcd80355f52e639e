"""High-resolution ``shapes`` scenes with anti-aliased (or soft, matting-style) object edges.

The scenes of ``clipseg.data.shapes.scenes`` are drawn at the model's scale with hard, pixel-exact edges. To
measure how sharp a mask is at full resolution, these scenes are large (512² by default) with small
objects (30–70 px across, so the model sees them at a few pixels) and edges that are
anti-aliased: each object is rasterised at ``supersample`` times the resolution and box-averaged, so
its coverage (alpha) is fractional along the edge, and the image is the alpha-composite of the
object's color over the same muted backgrounds as ``shapes``. With ``edge_sigma > 0`` the alpha is
blurred (a soft matte, like the blurred boundaries of RefMatte's composites) before compositing.

The prompt names the color + shape of one object; the target alpha is the union of every object of
that color and shape. Everything is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

# The same backgrounds, outlines and placement as the training scenes.
from clipseg.data.shapes.drawing import free_spot, outline, plain_background
from clipseg.data.shapes.scenes import COLORS, SHAPES, phrase_for

_COLOR_JITTER = 12  # as in shapes: keeps colors far apart


@dataclass(frozen=True)
class HiresShapesConfig:
    """How high-resolution scenes are drawn.

    Args:
        size: side of the square scene in pixels.
        min_diameter / max_diameter: object extent (circle diameter, polygon circumdiameter) in pixels.
        min_objects / max_objects: objects per scene (fewer only if placement fails).
        supersample: rasterisation factor for anti-aliased edges (1 = hard edges).
        edge_sigma: Gaussian blur (pixels) of each object's alpha: 0 = crisp, > 0 = soft matte.
    """

    size: int = 512
    min_diameter: float = 30.0
    max_diameter: float = 70.0
    min_objects: int = 2
    max_objects: int = 5
    supersample: int = 4
    edge_sigma: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.min_diameter <= self.max_diameter < self.size / 2:
            raise ValueError(
                f"need 0 < min_diameter <= max_diameter < size / 2, got {self.min_diameter}, "
                f"{self.max_diameter}, size {self.size}"
            )
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if self.supersample < 1 or self.edge_sigma < 0:
            raise ValueError("supersample must be >= 1 and edge_sigma >= 0")


def _alpha(shape: str, cx: float, cy: float, r: float, angle: float, config: HiresShapesConfig) -> np.ndarray:
    """``size x size`` float32 coverage of one object, anti-aliased by supersampling its bounding window."""
    s = config.supersample
    pad = int(np.ceil(3 * config.edge_sigma)) + 2
    x0, y0 = max(int(cx - r) - pad, 0), max(int(cy - r) - pad, 0)
    x1, y1 = min(int(np.ceil(cx + r)) + pad, config.size), min(int(np.ceil(cy + r)) + pad, config.size)
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    # Coordinates of the supersampled window; pixel centres sit at (i + 0.5) / s in scene pixels.
    lx, ly = (cx - x0) * s, (cy - y0) * s
    corners = outline(shape, lx, ly, r * s, angle)
    if corners is None:
        draw.ellipse((lx - r * s, ly - r * s, lx + r * s, ly + r * s), fill=255)
    else:
        draw.polygon(corners, fill=255)
    fine = np.asarray(canvas, dtype=np.float32) / 255.0
    coarse = fine.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))
    alpha = np.zeros((config.size, config.size), dtype=np.float32)
    alpha[y0:y1, x0:x1] = coarse
    if config.edge_sigma > 0:
        alpha = ndimage.gaussian_filter(alpha, config.edge_sigma).astype(np.float32)
    return alpha


def hires_scene(seed: int, index: int, config: HiresShapesConfig = HiresShapesConfig()) -> dict:
    """Scene ``index`` of stream ``seed``.

    Returns ``{"image": H x W x 3 uint8, "alpha": H x W float32 in [0, 1] (the target), "text": prompt,
    "objects": [(color, shape, diameter)]}``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 512, index]))
    size = config.size
    image = plain_background(rng, size).astype(np.float32)
    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    placed: list[tuple[float, float, float]] = []
    objects: list[tuple[str, str, float]] = []
    alphas: list[np.ndarray] = []
    for _ in range(n_objects):
        color, shape = str(rng.choice(list(COLORS))), str(rng.choice(SHAPES))
        r = rng.uniform(config.min_diameter, config.max_diameter) / 2
        # Soft edges reach 3 sigma beyond the outline: keep that much more from the border and each other.
        margin, gap = r + 3 * config.edge_sigma + 2, 4 + 6 * config.edge_sigma
        spot = free_spot(rng, r, size, placed, attempts=30, margin=margin, gap=gap)
        if spot is None:
            continue
        cx, cy = spot
        placed.append((cx, cy, r))
        alpha = _alpha(shape, cx, cy, r, rng.uniform(-0.25, 0.25), config)
        rgb = np.clip(np.array(COLORS[color]) + rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, 3), 0, 255)
        image = image * (1 - alpha[..., None]) + alpha[..., None] * rgb
        objects.append((color, shape, 2 * r))
        alphas.append(alpha)
    query = objects[int(rng.integers(len(objects)))]
    target = np.zeros((size, size), dtype=np.float32)
    for obj, alpha in zip(objects, alphas):
        if obj[:2] == query[:2]:
            target = np.maximum(target, alpha)
    return {
        "image": image.round().clip(0, 255).astype(np.uint8),
        "alpha": target,
        "text": phrase_for({"color": query[0], "shape": query[1]}),
        "objects": objects,
    }
