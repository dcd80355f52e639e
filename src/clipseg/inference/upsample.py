"""Low-resolution logits → probabilities at the image's own size, the same for every backend."""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def _axis_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``i0``, ``i1`` and weight of ``i1`` for each output position (half-pixel centres)."""
    src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``N x h x w`` maps resized to ``N x H x W`` bilinearly.

    The same sampling as ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
    and transformers' post-processing: pixel centres aligned, edges clamped, no antialiasing.
    """
    height, width = size
    y0, y1, wy = _axis_weights(maps.shape[1], height)
    x0, x1, wx = _axis_weights(maps.shape[2], width)
    maps = maps.astype(np.float32, copy=False)
    rows = maps[:, y0] * (1 - wy)[:, None] + maps[:, y1] * wy[:, None]  # N x H x w
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


def logits_to_probs(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``N x H x W`` float32 probabilities (sigmoid after upsampling) of ``N x h x w`` logits."""
    return expit(resize_bilinear(logits, size)).astype(np.float32)
