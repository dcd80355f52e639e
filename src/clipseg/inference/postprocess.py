"""Mask post-processing in numpy/scipy, at the image's own resolution, in one documented order.

``postprocess(probs, negatives, options)`` turns ``N x H x W`` probabilities of the positive prompts
(and ``M x H x W`` of the negative prompts) into the masks that are written, in this order:

1. negatives: where any negative prompt reaches the threshold (``threshold`` or 0.5), every
   positive mask is set to 0;
2. combine: ``union`` (pixelwise max) or ``intersection`` (min) of the positives gives one mask;
3. threshold: binary masks at ``threshold``; a morphology option (erode, min-area, fill-holes,
   dilate) binarises at 0.5 when no threshold is given, because those are defined on binary masks;
4. erode by ``erode`` px, 5. drop components (8-connected) under ``min_area`` px,
6. fill holes, 7. dilate by ``dilate`` px (erosion and dilation use a disk: Euclidean distance);
8. feather: Gaussian blur with sigma ``feather / 2``, truncated at ``feather`` px (soft output).

``FrameSmoother`` averages probabilities over neighbouring video frames before all of this.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from scipy import ndimage

Combine = Literal["none", "union", "intersection"]
COMBINE_MODES: tuple[str, ...] = ("none", "union", "intersection")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class PostProcess:
    """Options of ``postprocess``; the defaults leave probabilities unchanged."""

    threshold: float | None = None
    negative: tuple[str, ...] = ()
    combine: Combine = "none"
    erode: int = 0
    min_area: int = 0
    fill_holes: bool = False
    dilate: int = 0
    feather: int = 0

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_MODES)}, got {self.combine!r}")
        for name in ("erode", "min_area", "dilate", "feather"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be >= 0 px, got {getattr(self, name)}")
        if any(not text.strip() for text in self.negative):
            raise ValueError("empty negative prompt text")

    @property
    def binary(self) -> bool:
        """Whether the masks are binarised (a threshold, or a morphology option that needs one)."""
        morphology = self.erode or self.min_area or self.fill_holes or self.dilate
        return self.threshold is not None or bool(morphology)

    @property
    def cut(self) -> float:
        """The probability at which masks (and negative regions) count as present."""
        return 0.5 if self.threshold is None else self.threshold

    def labels(self, positives: list[str]) -> list[str]:
        """Names of the output masks: one per positive prompt, or one for a combined mask."""
        if self.combine == "none" or len(positives) == 1:
            return list(positives)
        return [f" {'|' if self.combine == 'union' else '&'} ".join(positives)]


def postprocess(
    probs: np.ndarray, negatives: np.ndarray | None = None, options: PostProcess | None = None
) -> np.ndarray:
    """``K x H x W`` float32 masks in [0, 1] from ``N x H x W`` positive and ``M x H x W`` negative probabilities.

    ``K`` is ``N``, or 1 when ``options.combine`` merges the prompts. Binary masks hold 0.0 / 1.0.
    """
    opts = options or PostProcess()
    masks = np.asarray(probs, dtype=np.float32)
    if masks.ndim != 3:
        raise ValueError(f"expected N x H x W probabilities, got shape {masks.shape}")
    if negatives is not None:
        masks = remove_negatives(masks, negatives, opts.cut)
    if opts.combine == "union":
        masks = masks.max(axis=0, keepdims=True)
    elif opts.combine == "intersection":
        masks = masks.min(axis=0, keepdims=True)
    if opts.binary:
        masks = np.stack([_morphology(m >= opts.cut, opts) for m in masks]).astype(np.float32)
    if opts.feather:
        masks = np.stack([feather(m, opts.feather) for m in masks])
    return masks


def remove_negatives(probs: np.ndarray, negatives: np.ndarray, cut: float) -> np.ndarray:
    """``N x H x W`` probabilities, zero where any of the ``M x H x W`` negatives reaches ``cut`` (step 1)."""
    if not len(negatives):
        return probs
    removed = np.asarray(negatives).max(axis=0) >= cut
    return np.where(removed[None], np.float32(0.0), probs)


def _morphology(mask: np.ndarray, opts: PostProcess) -> np.ndarray:
    if opts.erode:
        mask = erode(mask, opts.erode)
    if opts.min_area:
        mask = remove_small(mask, opts.min_area)
    if opts.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    if opts.dilate:
        mask = dilate(mask, opts.dilate)
    return mask


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``H x W`` bool: pixels within Euclidean distance ``radius`` of the mask."""
    if not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask) <= radius


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """``H x W`` bool: mask pixels farther than ``radius`` from any background pixel.

    The image border is not background: an object cut by the border keeps its edge there.
    """
    if mask.all():
        return mask
    return ndimage.distance_transform_edt(mask) > radius


def remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """``H x W`` bool without the 8-connected components of fewer than ``min_area`` pixels."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_area
    keep[0] = False  # background
    return keep[labels]


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """``H x W`` float32: Gaussian blur with sigma ``radius / 2`` reaching ``radius`` px (edges repeated)."""
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma=radius / 2, truncate=2.0, mode="nearest")


class FrameSmoother:
    """Temporal smoothing: each frame's ``N x H x W`` probabilities averaged with ``radius`` frames on each side.

    Push frames in order with ``push``; a frame comes back once its later neighbours are in (a delay
    of ``radius`` frames), the last ones from ``flush``. Near the ends the window is cut short. At
    most ``2 * radius + 1`` frames are held, so memory does not grow with the video's length.
    """

    def __init__(self, radius: int) -> None:
        if radius < 0:
            raise ValueError(f"smoothing radius must be >= 0 frames, got {radius}")
        self.radius = radius
        self._held: deque[tuple[int, object, np.ndarray]] = deque()
        self._count = 0  # frames pushed
        self._next = 0  # index of the next frame to hand back

    def push(self, item: T, probs: np.ndarray) -> list[tuple[T, np.ndarray]]:
        """Add frame ``item`` and return the frames that are now complete, as ``(item, smoothed)``."""
        self._held.append((self._count, item, probs))
        self._count += 1
        ready = []
        while self._count - 1 - self._next >= self.radius:
            ready.append(self._emit())
        return ready

    def flush(self) -> list[tuple[T, np.ndarray]]:
        """The frames still held (end of the video); the smoother is empty afterwards."""
        ready = [self._emit() for _ in range(self._count - self._next)]
        self._held.clear()
        self._count = self._next = 0
        return ready

    def _emit(self) -> tuple:
        while self._held[0][0] < self._next - self.radius:
            self._held.popleft()
        window = [p for i, _, p in self._held if abs(i - self._next) <= self.radius]
        item = next(it for i, it, _ in self._held if i == self._next)
        self._next += 1
        return item, (np.sum(window, axis=0) / len(window)).astype(np.float32)
