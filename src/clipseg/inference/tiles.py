"""Tiled inference: overlapping full-resolution windows, blended, gated by a coarser prediction.

A large image squashed to the model's input size loses every detail smaller than a few model
pixels. Windows cut from the image at full resolution keep them; but a window sees too little to
know what a prompt refers to (the red circle *on the left*, the one object of that color among
many). So the two are combined: the coarser prediction says *where* (context), the tiles say *which
pixels* (detail). Each prompt's tile probabilities are scaled by the gate
``clip(max_filter(p_coarse, gate_radius) / 0.5, 0, 1)``: untouched near what the coarser view
marks (the max filter widens it by ``gate_radius`` pixels so the sharper tile edges are not
clipped), faded out elsewhere. A prompt the coarser view marks nowhere (max < 0.5) has no context
to give, typically because its objects are too small to see there: the tiles decide alone.

A window reads an object well only near the scale the model was trained on; a larger one is read
weakly or in a checkered patch pattern. The shapes models learnt objects up to about a quarter of
the canvas's side (a square's side at most 0.27, ``clipseg.data.shapes.scenes.RADIUS``); v2.2
(128 px input) painted a 42 px square filling 0.33 of a 128 px window at 0.52 on average where a
256 px window (0.16 of it, resized to 128) read it at 0.93; and a 96 px window inside a 400 px
square sees no shape at all (IoU 0.31 from such windows, 0.96 from the whole image). So the tiles
are a pyramid (``levels``): windows of the input size times 1, 2, 4, ..., coarse to fine, each
level gated by the result of the coarser ones. A region the coarser view marks that is larger
than a window keeps at least the coarser probabilities (the maximum of both) over the region
widened by ``gate_radius``: no window sees its outline, the tiles only add there. A region larger
than ``OBJECT_FRACTION`` of a window keeps them inside, less the coarser view's blur: the window
sees and draws its outline, but its reading of the inside is not trusted. Smaller regions stay the
tiles' to trim (a lookalike the window sees whole and rejects is dropped). So whether an object is
there is decided by windows in which it spans at most ``OBJECT_FRACTION`` of the side (or by the
whole image), whatever the model's input size and the image's; finer windows only sharpen its edge.

Windows overlap by ``overlap`` (a fraction of the window) and are blended with weights that fall
off linearly towards each window's border, so no seam shows where windows meet. This module is
numpy only; the backend runs the model on the windows (each resized to the input size).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

OVERLAP = 0.25
THRESHOLD = 0.5  # where a probability counts as marked
GATE_PER_UPSAMPLING = 3  # gate radius in model pixels (x the upsampling factor)
# The largest object side, as a fraction of a window's side, that a window is trusted to judge:
# about the largest the shapes models were trained on (square sides 0.20-0.27 of the canvas) and
# below where v2.2 and v2 read a square unreliably (0.26-0.33 and 0.35-0.44 of the window).
OBJECT_FRACTION = 0.25
ZOOM = 2  # each pyramid level's windows are twice the next finer level's


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


def stitch(tiles: Iterable[np.ndarray], boxes: list[tuple[int, int]], height: int, width: int) -> np.ndarray:
    """Blend window probabilities into one map.

    Args:
        tiles: one ``N x S x S`` probability map per window of side ``S`` (``N`` prompts), e.g. a
            ``T x N x S x S`` array or a generator (only one window is held at a time).
        boxes: the windows' top-left corners (``tile_boxes``), in the same order.
        height / width: the image's size.

    Returns:
        ``N x H x W`` float32 blended probabilities.
    """
    total, norm = None, np.zeros((height, width))
    for tile, (y, x) in zip(tiles, boxes):
        side = tile.shape[-1]
        weight = _blend_weight(side)
        if total is None:
            total = np.zeros((tile.shape[0], height, width))
        total[:, y : y + side, x : x + side] += tile * weight
        norm[y : y + side, x : x + side] += weight
    return (total / norm).astype(np.float32)


def larger_than(marked: np.ndarray, sizes: Sequence[float]) -> list[np.ndarray]:
    """For each of ``sizes``: ``H x W`` bool, the connected regions of ``marked`` whose height or width
    exceeds it (the regions are labelled once for all sizes)."""
    labels, count = ndimage.label(marked)
    extents = np.array(
        [max(ys.stop - ys.start, xs.stop - xs.start) for ys, xs in ndimage.find_objects(labels)]
    )
    indices = np.arange(1, count + 1)
    return [np.isin(labels, indices[extents > size]) for size in sizes]


def combine(global_probs: np.ndarray, tile_probs: np.ndarray, *, gate_radius: int, window: int) -> np.ndarray:
    """Context from the coarser view (``global_probs``), detail from the tiles (see the module doc).

    Args:
        global_probs / tile_probs: ``N x H x W`` probabilities at the image's size.
        gate_radius: how far (pixels) the tiles may extend the coarser view's mask;
            ``gate_radius / GATE_PER_UPSAMPLING`` is that view's blur (its upsampling factor).
        window: the tiles' side in image pixels. Coarser-view regions larger than it keep their
            probabilities, widened by ``gate_radius`` (no window sees their outline); regions
            larger than ``OBJECT_FRACTION`` of it keep them inside, less the coarser view's blur
            (a window sees their outline but reads their inside unreliably).

    Returns:
        ``N x H x W`` float32 probabilities.
    """
    size = 2 * gate_radius + 1
    gate = np.clip(
        ndimage.maximum_filter(global_probs, size=(1, size, size), mode="nearest") / THRESHOLD, 0, 1
    )
    sees_nothing = global_probs.max(axis=(1, 2)) < THRESHOLD  # N: no context for these prompts
    gate[sees_nothing] = 1.0
    out = tile_probs * gate
    blur = 2 * (gate_radius // GATE_PER_UPSAMPLING) + 1
    for n in np.flatnonzero(~sees_nothing):
        unseen, misread = larger_than(global_probs[n] >= THRESHOLD, (window, OBJECT_FRACTION * window))
        keep = ndimage.maximum_filter(unseen, size=size, mode="nearest") | (
            ndimage.minimum_filter(misread, size=blur, mode="nearest")
        )
        out[n] = np.where(keep, np.maximum(out[n], global_probs[n]), out[n])
    return out.astype(np.float32)


@dataclass(frozen=True)
class Level:
    """One pyramid level: windows of ``window`` image px, combined by ``combine(...)`` with these."""

    window: int
    gate_radius: int


def levels(height: int, width: int, side: int) -> list[Level]:
    """The tile pyramid of an ``height x width`` image for a model of input ``side``, coarse to fine.

    Windows of ``side * ZOOM**k`` px for every ``k >= 0`` that still needs tiles (both image sides
    exceed the window); none when the image is not larger than the input size. Each level is gated
    by the coarser view before it (the whole image first), whose blur sets the gate radius:
    ``GATE_PER_UPSAMPLING`` of its model pixels.
    """
    windows = []
    window = side
    while needs_tiles(height, width, window):
        windows.append(window)
        window *= ZOOM
    coarser = [max(height, width), *windows[::-1]]  # the view before each level, in image px
    return [
        Level(window, round(GATE_PER_UPSAMPLING * before / side))
        for before, window in zip(coarser, windows[::-1])
    ]
