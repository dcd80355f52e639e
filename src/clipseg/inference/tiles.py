"""Tiled inference: overlapping full-resolution windows, blended, gated by the whole-image prediction.

A large image squashed to the model's input size loses every detail smaller than a few model
pixels. Windows of exactly the model's input size, cut from the image at full resolution, keep
them; but a window sees too little to know what a prompt refers to (the red circle *on the left*,
the one object of that color among many). So the two are combined: the whole-image prediction says
*where* (context), the tiles say *which pixels* (detail). Each prompt's tile probabilities are
scaled by the gate ``clip(max_filter(p_global, gate_radius) / 0.5, 0, 1)``: untouched near what the
whole-image view marks (the max filter widens it by ``gate_radius`` pixels so the sharper tile edges
are not clipped), faded out elsewhere. A prompt the whole-image view marks nowhere (max < 0.5) has
no context to give, typically because its objects are too small to see at the model's input size:
there the tiles decide alone.

The other way round, a window cannot judge an object larger than itself: it sees a patch of colour,
not the shape the prompt names, and marks it weakly or not at all (a 400 px square in a 1024² image
came out at IoU 0.31 from the tiles, 0.96 from the whole image). So every region the whole-image
view marks that is larger than a window keeps at least the whole-image probabilities (the maximum
of both, over the region widened by ``gate_radius``): tiles only add there, they never erase what
the whole image shows. Smaller regions stay the tiles' to trim (a lookalike the window sees whole
and rejects is dropped).

Windows overlap by ``overlap`` (a fraction of the window) and are blended with weights that fall
off linearly towards each window's border, so no seam shows where windows meet. This module is
numpy only; the backend runs the model on the windows.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

OVERLAP = 0.25
THRESHOLD = 0.5  # where a probability counts as marked
GATE_PER_UPSAMPLING = 3  # gate radius in model pixels (x the upsampling factor)


def window_starts(length: int, window: int, overlap: float = OVERLAP) -> list[int]:
    """Start offsets of windows of ``window`` px covering ``length`` px with at least ``overlap`` overlap.

    The last window ends exactly at the border; ``length <= window`` gives ``[0]``.
    """
    if length <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    count = int(np.ceil((length - window) / stride)) + 1
    # Spread the windows evenly so every overlap is the same (>= the asked one).
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def tile_boxes(height: int, width: int, window: int, overlap: float = OVERLAP) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the windows covering an ``height x width`` image."""
    return [
        (y, x) for y in window_starts(height, window, overlap) for x in window_starts(width, window, overlap)
    ]


def needs_tiles(height: int, width: int, window: int) -> bool:
    """Whether tiling adds anything: only when both sides exceed the window (else one window = the whole image)."""
    return height > window and width > window


def _blend_weight(window: int) -> np.ndarray:
    """``window x window`` weights: 1 in the middle, falling linearly to a small positive value at the border."""
    ramp = np.minimum(np.arange(window) + 0.5, window - np.arange(window) - 0.5) / (window / 2)
    ramp = np.clip(ramp, 0.05, 1.0)
    return np.outer(ramp, ramp)


def stitch(tiles: np.ndarray, boxes: list[tuple[int, int]], height: int, width: int) -> np.ndarray:
    """Blend window probabilities into one map.

    Args:
        tiles: ``T x N x S x S`` probabilities of ``T`` windows of side ``S``, ``N`` prompts each.
        boxes: the windows' top-left corners (``tile_boxes``), in the same order.
        height / width: the image's size.

    Returns:
        ``N x H x W`` float32 blended probabilities.
    """
    side = tiles.shape[-1]
    weight = _blend_weight(side)
    total = np.zeros((tiles.shape[1], height, width))
    norm = np.zeros((height, width))
    for tile, (y, x) in zip(tiles, boxes):
        total[:, y : y + side, x : x + side] += tile * weight
        norm[y : y + side, x : x + side] += weight
    return (total / norm).astype(np.float32)


def larger_than_window(marked: np.ndarray, window: int) -> np.ndarray:
    """``H x W`` bool: the connected regions of ``marked`` whose height or width exceeds ``window`` px."""
    labels, _ = ndimage.label(marked)
    large = [
        index
        for index, (ys, xs) in enumerate(ndimage.find_objects(labels), start=1)
        if max(ys.stop - ys.start, xs.stop - xs.start) > window
    ]
    return np.isin(labels, large)


def combine(global_probs: np.ndarray, tile_probs: np.ndarray, *, gate_radius: int, window: int) -> np.ndarray:
    """Context from the whole image, detail from the tiles (see the module doc).

    Args:
        global_probs / tile_probs: ``N x H x W`` probabilities at the image's size.
        gate_radius: how far (pixels) the tiles may extend the whole-image mask.
        window: the tiles' side in image pixels; whole-image regions larger than it keep their
            probabilities (a window cannot see them whole).

    Returns:
        ``N x H x W`` float32 probabilities.
    """
    size = (1, 2 * gate_radius + 1, 2 * gate_radius + 1)
    gate = np.clip(ndimage.maximum_filter(global_probs, size=size, mode="nearest") / THRESHOLD, 0.0, 1.0)
    sees_nothing = global_probs.max(axis=(1, 2)) < THRESHOLD  # N: no context for these prompts
    gate[sees_nothing] = 1.0
    out = tile_probs * gate
    for n in np.flatnonzero(~sees_nothing):
        large = larger_than_window(global_probs[n] >= THRESHOLD, window)
        if large.any():
            keep = ndimage.maximum_filter(large, size=size[1:], mode="nearest")  # widened like the gate
            out[n] = np.where(keep, np.maximum(out[n], global_probs[n]), out[n])
    return out.astype(np.float32)
