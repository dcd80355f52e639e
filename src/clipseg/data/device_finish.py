"""The training batch's pixel work, done where the step runs (the GPU) instead of in the loader workers.

Training workers decode, draw the prompt, crop and flip, and send the crops as they are: the image crop
and the visual prompt's support crop + mask (``core.prompts.prompt_crop``), variable in size and packed
per batch into one flat uint8 tensor each (``Ragged``). After the transfer, ``finish_batch`` resizes
them to ``S x S``, finishes the visual prompts (blur, darken, mix) and normalizes, all batched on the
device. The resizes and the blur were most of a worker's time; without them a worker delivers 4-5x the
samples (docs/training.md, "Loader workers per GPU"). Nothing here reads back from the GPU.

The numbers are those of the CPU path (``core.preprocess.preprocess``, ``core.prompts.visual_prompt``,
used by evaluation and inference) up to rounding: the resizes are PIL's filters (``batch_resize``; at
most 2 levels on under 3 % of the pixels, ``tests/unit/test_device_finish.py``), the blur uses OpenCV's
Gaussian kernel and border, the mixing and truncation are the same formulas. The whole batch takes a
few hundred ops, most of them one copy per crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from clipseg.core.config import PreprocessConfig
from clipseg.core.preprocess import normalize_table
from clipseg.core.prompts import VisualPromptStyle
from clipseg.data.batch_resize import SUPPORTS, host_to_device, resize_batch

# PIL filters resized here (``batch_resize``); others are resized by PIL in the worker.
DEVICE_FILTERS = tuple(SUPPORTS)
_PROMPT_FILTER, _PROMPT_MASK_FILTER = "bicubic", "bilinear"  # as ``visual_prompt``


class Ragged(NamedTuple):
    """``B`` uint8 arrays of different shapes in one flat tensor: ``flat`` (``sum of sizes``) and their ``shapes``.

    The shapes stay Python ints on the host (the transfer moves only ``flat``), so unpacking on the
    GPU never reads back from it.
    """

    flat: torch.Tensor
    shapes: Sequence[Sequence[int]]

    @classmethod
    def pack(cls, arrays: Sequence[np.ndarray]) -> Ragged:
        """Pack uint8 ``arrays``; in a DataLoader worker straight into shared memory, as ``default_collate`` stacks."""
        if any(a.dtype != np.uint8 for a in arrays):
            raise TypeError(f"Ragged packs uint8 arrays, got {sorted({str(a.dtype) for a in arrays})}")
        shapes = tuple(a.shape for a in arrays)
        flat = torch.empty(sum(a.size for a in arrays), dtype=torch.uint8)
        if torch.utils.data.get_worker_info() is not None:
            flat.share_memory_()
        start, out = 0, flat.numpy()
        for a in arrays:  # straight from crop views: no contiguous copy first
            out[start : start + a.size].reshape(a.shape)[...] = a
            start += a.size
        return cls(flat, shapes)

    def unpack(self) -> list[torch.Tensor]:
        sizes = [math.prod(shape) for shape in self.shapes]
        return [part.view(*shape) for part, shape in zip(torch.split(self.flat, sizes), self.shapes)]


def _reflect_index(length: int, pad: int) -> torch.Tensor:
    """Indices of a line of ``length`` padded by ``pad`` on both sides as OpenCV's ``BORDER_REFLECT`` (``cba|abc|cba``)."""
    index = np.arange(-pad, length + pad)
    while ((index < 0) | (index >= length)).any():
        index = np.where(index < 0, -index - 1, index)
        index = np.where(index >= length, 2 * length - 1 - index, index)
    return torch.as_tensor(index)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``B x C x H x W`` float images blurred as ``cv2.GaussianBlur(sigmaX=sigma, borderType=BORDER_REFLECT)`` on float32."""
    kernel = cv2.getGaussianKernel(round(sigma * 8 + 1) | 1, sigma, cv2.CV_32F)  # OpenCV's size for floats
    device = images.device
    taps = host_to_device(torch.as_tensor(kernel[:, 0]), device)
    pad, channels = len(taps) // 2, images.shape[1]
    rows = images.index_select(2, host_to_device(_reflect_index(images.shape[2], pad), device))
    rows = F.conv2d(rows, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    cols = rows.index_select(3, host_to_device(_reflect_index(images.shape[3], pad), device))
    return F.conv2d(cols, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def compose_prompts(images: torch.Tensor, masks: torch.Tensor, style: VisualPromptStyle) -> torch.Tensor:
    """``visual_prompt``'s last step on a batch: ``B x 3 x S x S`` prompts (0..255 integers) from resized crops.

    ``images`` ``B x 3 x S x S`` and ``masks`` ``B x 1 x S x S`` hold 0..255 integers (float). A sample
    whose mask is empty keeps its image, as in ``visual_prompt``.
    """
    weight = masks / 255.0
    background = gaussian_blur(images, style.blur_sigma) if style.blur_sigma > 0 else images
    background = background * style.background_factor
    if style.highlight:
        out = (weight * images + (1 - weight) * background) * (0.85 + 0.15 * weight)
    else:
        # exactly the image where w = 1 and the background where w = 0, as visual_prompt's shortcuts
        mixed = weight * images + (1 - weight) * background
        out = torch.where(masks == 255, images, torch.where(masks == 0, background, mixed))
    out = out.clamp(0, 255).floor_()  # numpy's astype(uint8) truncates
    has_object = masks.flatten(1).any(1)[:, None, None, None]
    return torch.where(has_object, out, images)


def _normalize(pixels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``B x 3 x S x S`` 0..255 integers (any dtype) normalized through ``preprocess``'s lookup ``table`` (``256 x 3``)."""
    index = pixels.long()
    return torch.stack([table[:, c][index[:, c]] for c in range(3)], dim=1)


def finish_batch(
    batch: dict[str, Any], preprocessing: PreprocessConfig, style: VisualPromptStyle | None = None
) -> dict[str, Any]:
    """The batch with its ``Ragged`` crops turned into the step's normalized ``B x 3 x S x S`` ``image`` and ``support``.

    ``style``: the prompts' (the paper's by default). ``support_mask`` (``Ragged``; ``0 x 0`` where the
    support is already a prompt) is consumed; supports flagged invalid become zeros, as in an evaluation
    batch; a uint8 ``mask`` becomes float32 in [0, 1]. Batches without crops come back unchanged.
    """
    if not isinstance(batch["image"], Ragged):
        return batch
    size, device = preprocessing.size, batch["image"].flat.device
    table = host_to_device(torch.from_numpy(normalize_table(preprocessing)), device)
    images = resize_batch(batch["image"].unpack(), size, preprocessing.resample)
    crops, masks = batch["support"].unpack(), batch["support_mask"].unpack()
    # From the host-side shapes, not support_valid (on the device): an absent support is a 0 x 0 crop.
    valid = [i for i, crop in enumerate(crops) if crop.numel() > 0]
    prompt = [i for i in valid if masks[i].numel() > 0]
    finished = [i for i in valid if masks[i].numel() == 0]  # already prompts: resized only
    supports = torch.zeros(len(crops), 3, size, size, device=device)
    if finished:
        resized = resize_batch([crops[i] for i in finished], size, preprocessing.resample)
        supports.index_copy_(0, _rows(finished, device), resized)
    if prompt:
        composed = compose_prompts(
            resize_batch([crops[i] for i in prompt], size, _PROMPT_FILTER),
            resize_batch([masks[i] for i in prompt], size, _PROMPT_MASK_FILTER),
            style or VisualPromptStyle(),
        )
        supports.index_copy_(0, _rows(prompt, device), composed)
    support = torch.zeros_like(supports)  # invalid supports: zeros, as in an evaluation batch
    if valid:
        rows = _rows(valid, device)
        support.index_copy_(0, rows, _normalize(supports.index_select(0, rows), table))
    mask = batch["mask"]
    if mask.dtype == torch.uint8:  # levels v of the masks v / 255, as decoded (``streaming.MASK_LEVELS``)
        mask = mask.float() / 255.0
    rest = {key: value for key, value in batch.items() if key != "support_mask"}
    return {**rest, "image": _normalize(images, table), "mask": mask, "support": support}


def _rows(indices: list[int], device: torch.device) -> torch.Tensor:
    return host_to_device(torch.tensor(indices), device)
