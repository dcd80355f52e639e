"""Edge-aware refinement of mask probabilities with the image as guide (numpy only, no torch).

CLIPSeg predicts at its input size (352², ``shapes-tiny``: 96²) and the predictor upsamples
bilinearly, so on a large image every edge is a blurry ramp several pixels wide that ignores the
image. The guided filter (He, Sun, Tang: "Guided Image Filtering", ECCV 2010 / TPAMI 2013) fixes
that: in every window it fits the probabilities as an affine function of the image's colour
(``q = a · I + b``, the colour-guide variant with a 3 x 3 covariance per window), so the output
follows colour edges inside the blurry band and stays smooth elsewhere.

Defaults, scaled to the image so one setting fits every size:

- radius: ``RADIUS_PER_UPSAMPLING`` (4) model pixels, i.e. 4 x the upsampling factor (image side /
  model input side), at least 2 px. The decoder's masks are smooth over about half a patch
  (``shapes-tiny``: 8 px patches at 96²), so after upsampling the uncertain band around an edge is
  several model pixels wide and the window must span it to see both sides. Chosen on development
  scenes (``bench/refine_bench.py --seed 1``, 2 x 40 scenes: 2, 3, 4, 5, 6 model pixels; 4 and more
  were best and alike) and checked on scenes of another seed.
- eps: ``EPS`` = 1e-3 on colours in [0, 1] (regularisation of ``a``): a colour step smaller than
  about ``sqrt(eps)`` ≈ 3 % of the range is treated as noise (texture, grain), larger steps as edges.
  It is a variance of the colours, so it does not depend on the image size.
- images whose longer side exceeds ``MAX_SIDE`` are filtered at that size and the affine
  coefficients upsampled (He and Sun's "fast guided filter", arXiv 1505.00996): linear
  coefficients are smooth, so this costs little accuracy and bounds time and memory.

Everything is vectorised over prompts: the guide's statistics (means, inverse covariances) are
computed once per image and shared by the ``N`` masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

REFINE_MODES = ("none", "guided")
RADIUS_PER_UPSAMPLING = 4.0
EPS = 1e-3
MAX_SIDE = 1024


@dataclass(frozen=True)
class GuidedFilter:
    """Settings of the colour guided filter; ``radius=None`` scales it to the image (see module doc)."""

    radius: int | None = None
    eps: float = EPS
    max_side: int = MAX_SIDE

    def radius_for(self, image_side: int, model_side: int) -> int:
        """Window radius in pixels of the full-resolution image."""
        if self.radius is not None:
            return self.radius
        return max(2, round(RADIUS_PER_UPSAMPLING * image_side / model_side))


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2r + 1)²`` window around each pixel, clipped at the borders.

    Args:
        x: ``... x H x W`` array (any leading axes).
        radius: window radius ``r`` in pixels.

    Returns:
        ``... x H x W`` float32 means (running sums: O(1) per pixel for any radius).
    """
    out = np.asarray(x, dtype=np.float32)
    for axis in (-2, -1):
        n = out.shape[axis]
        # Zero padding sums only the pixels inside the image; dividing by the share of the window
        # inside turns that into the mean over the clipped window.
        out = ndimage.uniform_filter1d(out, 2 * radius + 1, axis=axis, mode="constant")
        idx = np.arange(n)
        inside = (np.minimum(idx + radius + 1, n) - np.maximum(idx - radius, 0)) / (2 * radius + 1)
        out /= inside.astype(np.float32).reshape((-1, 1) if axis == -2 else (1, -1))
    return out


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``... x H x W`` float arrays to ``size`` = (H', W') (PIL, one plane at a time)."""
    planes = x.reshape(-1, *x.shape[-2:]).astype(np.float32)
    resized = [np.asarray(Image.fromarray(p, mode="F").resize(size[::-1], Image.BILINEAR)) for p in planes]
    return np.stack(resized).reshape(*x.shape[:-2], *size)


def _coefficients(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged affine coefficients ``(a: N x 3 x H x W, b: N x H x W)`` of ``src`` (N x H x W) on ``guide`` (3 x H x W)."""
    mean_i = box_mean(guide, radius)  # 3 x H x W

    def cov(i: int, j: int) -> np.ndarray:
        return box_mean(guide[i] * guide[j], radius) - mean_i[i] * mean_i[j] + (eps if i == j else 0.0)

    # (Σ + eps·1)⁻¹ of every window by cofactors of the symmetric 3 x 3 matrix: elementwise, shared by all prompts.
    rr, rg, rb, gg, gb, bb = cov(0, 0), cov(0, 1), cov(0, 2), cov(1, 1), cov(1, 2), cov(2, 2)
    inv = {
        (0, 0): gg * bb - gb * gb,
        (0, 1): gb * rb - rg * bb,
        (0, 2): rg * gb - gg * rb,
        (1, 1): rr * bb - rb * rb,
        (1, 2): rg * rb - rr * gb,
        (2, 2): rr * gg - rg * rg,
    }
    det = rr * inv[0, 0] + rg * inv[0, 1] + rb * inv[0, 2]
    mean_p = box_mean(src, radius)  # N x H x W
    cov_ip = box_mean(guide[None] * src[:, None], radius) - mean_i[None] * mean_p[:, None]  # N x 3 x H x W
    a = np.stack(
        [sum(inv[min(i, j), max(i, j)] * cov_ip[:, j] for j in range(3)) / det for i in range(3)], axis=1
    )
    b = mean_p - (a * mean_i[None]).sum(axis=1)
    return box_mean(a, radius), box_mean(b, radius)


def guided_filter(
    image: np.ndarray, probs: np.ndarray, *, radius: int, eps: float = EPS, max_side: int = MAX_SIDE
) -> np.ndarray:
    """Colour guided filter of ``N`` probability maps with the image as guide.

    Args:
        image: ``H x W x 3`` uint8 guide.
        probs: ``N x H x W`` probabilities at the image's size (e.g. bilinearly upsampled).
        radius: window radius in pixels of the full image.
        eps: regularisation (variance of colours in [0, 1]).
        max_side: filter at most at this longer side (coefficients upsampled), see module doc.

    Returns:
        ``N x H x W`` float32 refined probabilities in [0, 1].
    """
    if image.ndim != 3 or image.shape[2] != 3 or probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"need an H x W x 3 image and N x H x W probabilities, got {image.shape}, {probs.shape}"
        )
    guide = np.moveaxis(image, -1, 0).astype(np.float32) / 255.0
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        small = (max(1, round(height * scale)), max(1, round(width * scale)))
        a, b = _coefficients(_resize(guide, small), _resize(probs, small), max(1, round(radius * scale)), eps)
    else:
        a, b = _coefficients(guide, probs.astype(np.float32), radius, eps)

    def full(x: np.ndarray) -> np.ndarray:
        return x if x.shape[-2:] == (height, width) else _resize(x, (height, width))

    # q = a · I + b, one colour channel at a time: never an N x 3 x H x W array at full resolution.
    refined = full(b)
    for channel in range(3):
        refined += full(a[:, channel]) * guide[channel]
    return refined.clip(0.0, 1.0).astype(np.float32)


def refine(
    image: np.ndarray, probs: np.ndarray, mode: str, *, model_side: int, guided: GuidedFilter = GuidedFilter()
) -> np.ndarray:
    """Refine ``N x H x W`` upsampled probabilities of ``image`` (``H x W x 3`` uint8) by ``mode``.

    ``"none"`` returns ``probs`` untouched; ``"guided"`` runs the colour guided filter with radius
    scaled to the upsampling factor ``max(H, W) / model_side``.
    """
    if mode not in REFINE_MODES:
        raise ValueError(f"unknown refine mode {mode!r}: use one of {', '.join(REFINE_MODES)}")
    if mode == "none":
        return probs
    radius = guided.radius_for(max(image.shape[:2]), model_side)
    return guided_filter(image, probs, radius=radius, eps=guided.eps, max_side=guided.max_side)
