"""A varied look for shapes scenes: everything a scene's answer does not depend on, drawn at random.

``shapes.make_scene`` draws the plain world (muted solid or gradient backgrounds, one canvas size,
aliased edges, lossless pixels). Given a ``VariedStyle`` it draws the same objects, prompts and masks
with, instead:

- backgrounds: flat, gradient, fine noise, stripes, checkers, blotches, or a synthesized photo-like
  texture (octaves of value noise, warped into grain, marble or cloud patterns, mapped to a palette);
  optionally (``VariedStyle.backgrounds``) also radial gradients and vignettes;
- object colours jittered per channel and in lightness, and a global brightness / contrast change;
- anti-aliased edges (the coverage's edge pixels blended with the background) or aliased ones;
- object sizes scaled per scene (small and large stay apart within a scene) and random canvas sizes;
- mild blur, sensor noise and JPEG compression of the finished image.

Masks stay the exact boolean coverage of each object. The style holds no state: every draw comes from
the scene's own ``numpy`` generator, so a sample stays a pure function of its seed.

Nothing here imports the shapes world; ``shapes`` calls these hooks (no import cycle).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

BACKGROUNDS = ("flat", "gradient", "noise", "stripes", "checkers", "blotches", "texture")
# Kinds a style may add to ``BACKGROUNDS`` (off by default, so the default stream stays as it was).
RADIAL_BACKGROUNDS = ("radial", "vignette")


@dataclass(frozen=True)
class VariedStyle:
    """How varied scenes are drawn.

    Args:
        prob: probability that a training scene is varied (the others keep the plain look, so the
            original world is still seen).
        canvas: range of the scene side in pixels (the transform resizes every scene to the input).
        object_scale: per-scene factor on the shapes world's object radii.
        rotation: objects turn by up to this many radians either way (the plain world: 0.25; pi
            covers every pose a square or triangle can show, their symmetries being 90 and 120 degrees).
        color_jitter: per-channel jitter of an object's colour.
        lightness: per-object factor on its colour.
        antialias_prob: probability that a scene's edges are anti-aliased.
        contrast / brightness: global factor / offset applied to the finished scene.
        noise_prob / blur_prob / jpeg_prob: probability of sensor noise, a slight blur, JPEG.
        jpeg_quality: JPEG quality range.
        backgrounds: the background kinds drawn, uniformly (``BACKGROUNDS``, optionally followed by
            ``RADIAL_BACKGROUNDS``).
    """

    prob: float = 0.75
    canvas: tuple[int, int] = (96, 256)
    object_scale: tuple[float, float] = (0.55, 1.05)
    rotation: float = 0.5
    color_jitter: int = 30
    lightness: tuple[float, float] = (0.8, 1.12)
    antialias_prob: float = 0.5
    contrast: tuple[float, float] = (0.75, 1.15)
    brightness: tuple[float, float] = (-25.0, 25.0)
    noise_prob: float = 0.3
    blur_prob: float = 0.15
    jpeg_prob: float = 0.35
    jpeg_quality: tuple[int, int] = (35, 90)
    backgrounds: tuple[str, ...] = BACKGROUNDS

    def __post_init__(self) -> None:
        if not 32 <= self.canvas[0] <= self.canvas[1]:
            raise ValueError(f"varied canvas range must be 32 <= low <= high, got {self.canvas}")
        unknown = set(self.backgrounds) - set(BACKGROUNDS + RADIAL_BACKGROUNDS)
        if unknown or not self.backgrounds:
            raise ValueError(
                f"varied backgrounds must be some of {BACKGROUNDS + RADIAL_BACKGROUNDS}, got {self.backgrounds}"
            )

    def canvas_size(self, rng: np.random.Generator) -> int:
        """Side of one scene's canvas."""
        return int(rng.integers(self.canvas[0], self.canvas[1] + 1))

    def object_rgb(self, rng: np.random.Generator, rgb: tuple[int, int, int]) -> np.ndarray:
        """An object's colour (``3`` float): the named colour, jittered and lightened or darkened."""
        jitter = rng.integers(-self.color_jitter, self.color_jitter + 1, 3)
        return (np.asarray(rgb, np.float32) + jitter) * rng.uniform(*self.lightness)


def style_from(prob: float, options: dict[str, Any] | None = None) -> VariedStyle:
    """A ``VariedStyle`` of share ``prob`` with other fields from a config's ``options`` (YAML lists
    become the tuples the fields hold)."""
    fields = {
        key: tuple(value) if isinstance(value, list) else value for key, value in (options or {}).items()
    }
    return VariedStyle(prob=prob, **fields)


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A background colour: a grey level with a moderate tint, so object colours stay apart from it."""
    return rng.uniform(30, 225) + rng.uniform(-35, 35, size=3)


def _upsampled_noise(rng: np.random.Generator, cells: int, size: int) -> np.ndarray:
    """``size x size`` float32 in about [0, 1]: uniform noise on a ``cells``² grid, bicubically enlarged."""
    coarse = rng.uniform(0, 1, size=(cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size x size`` float32 in [0, 1]: a photo-like texture (fractal noise, optionally warped)."""
    octaves = [_upsampled_noise(rng, cells, size) / 2**k for k, cells in enumerate((3, 6, 12, 24, 48))]
    t = np.sum(octaves, axis=0)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(3)
    if kind == 0:  # marble: sine bands bent by the noise
        t = 0.5 + 0.5 * np.sin((x * rng.uniform(2, 8) + y * rng.uniform(-4, 4) + 4 * t) * np.pi)
    elif kind == 1:  # wood / grain: rings around a point, warped by the noise
        cx, cy = rng.uniform(-0.5, 1.5, size=2)
        t = np.mod(np.hypot(x - cx, y - cy) * rng.uniform(6, 18) + 2 * t, 1.0)
    return t.astype(np.float32)


def _pattern(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size x size`` float32 in [0, 1]: where the background goes from its first colour to its second."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "flat":
        return np.zeros((size, size), np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * x + np.sin(angle) * y
        return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    if kind == "noise":
        return rng.uniform(0, 1, size=(size, size)).astype(np.float32) * rng.uniform(0.2, 0.6)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.25) * size
        wave = np.sin((np.cos(angle) * x + np.sin(angle) * y) * 2 * np.pi / period)
        return (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
    if kind == "checkers":
        cell = max(2, int(rng.uniform(0.04, 0.16) * size))
        return ((x // cell + y // cell) % 2).astype(np.float32)
    if kind == "blotches":
        return _upsampled_noise(rng, int(rng.integers(4, 12)), size).clip(0, 1)
    if kind == "radial":  # rings of equal colour around a centre anywhere near the canvas
        cx, cy = rng.uniform(-0.25, 1.25, size=2) * size
        distance = np.hypot(x - cx, y - cy)
        return (distance / max(float(distance.max()), 1e-6)).astype(np.float32)
    if kind == "vignette":  # even middle, the corners shaded towards the second colour
        cx, cy = rng.uniform(0.35, 0.65, size=2) * size
        distance = np.hypot(x - cx, y - cy) / (size / np.sqrt(2))
        return (distance.clip(0, 1) ** rng.uniform(1.5, 3.0)).astype(np.float32)
    return _texture(rng, size)


def varied_background(
    rng: np.random.Generator, size: int, kinds: tuple[str, ...] = BACKGROUNDS
) -> np.ndarray:
    """``size x size x 3`` uint8: one of ``kinds`` between two (for textures, three) muted colours."""
    kind = kinds[int(rng.integers(len(kinds)))]
    t = _pattern(kind, rng, size)[..., None]
    a, b = _muted(rng), _muted(rng)
    if kind == "vignette":  # a vignette darkens: its rim is the middle colour, dimmer
        b = a * rng.uniform(0.35, 0.8)
    image = (1 - t) * a + t * b
    if kind == "texture":  # a third colour in the texture's middle tones
        image += (1 - np.abs(2 * t - 1)) * (_muted(rng) - (a + b) / 2)
    if rng.random() < 0.5:  # grain
        image = image + rng.normal(0, rng.uniform(2, 8), size=(size, size, 1))
    return image.clip(0, 255).astype(np.uint8)


def paint(image: np.ndarray, coverage: np.ndarray, rgb: np.ndarray, antialias: bool) -> None:
    """Paint ``rgb`` over the ``H x W`` bool ``coverage`` of ``image`` (``H x W x 3`` uint8), in place.

    Anti-aliased: the coverage is softened by a 3 x 3 box, so edge pixels mix the colour with what was
    there (as a renderer with coverage-based anti-aliasing does); interior pixels are the colour.
    """
    if not antialias:
        image[coverage] = rgb.clip(0, 255).astype(np.uint8)
        return
    alpha = cv2.blur(coverage.astype(np.float32), (3, 3))
    alpha = np.maximum(alpha, coverage * 0.5)[..., None]  # edge pixels of the mask keep at least half
    ys, xs = np.nonzero(alpha[..., 0])
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    blended = (1 - alpha[box]) * image[box] + alpha[box] * rgb
    image[box] = blended.clip(0, 255).round().astype(np.uint8)


def finish(rng: np.random.Generator, image: np.ndarray, style: VariedStyle) -> np.ndarray:
    """The finished scene (``H x W x 3`` uint8): global contrast / brightness, then noise, blur, JPEG."""
    out = image.astype(np.float32)
    out = (out - 128) * rng.uniform(*style.contrast) + 128 + rng.uniform(*style.brightness)
    if rng.random() < style.noise_prob:
        out += rng.normal(0, rng.uniform(2, 10), size=out.shape)
    out = out.clip(0, 255).astype(np.uint8)
    if rng.random() < style.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.0))
    if rng.random() < style.jpeg_prob:
        buffer = io.BytesIO()
        quality = int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
        Image.fromarray(out).save(buffer, format="JPEG", quality=quality)
        out = np.asarray(Image.open(buffer).convert("RGB"))
    return out
