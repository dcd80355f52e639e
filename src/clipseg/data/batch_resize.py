"""PIL's bilinear / bicubic resize for a batch of differently sized images, on any device, in a few ops.

``device_finish`` resizes every crop of a training batch on the GPU. One ``F.interpolate`` per crop
would cost ~10 launches each (~2000 a batch of 64) from the training process; here a whole batch takes
one copy per image into a padded canvas and, per pass, one gather + multiply-add per filter tap.

The numbers are PIL's (``Image.resize``, ``reducing_gap=None``): the same filters and supports,
stretched when shrinking (antialiasing), the same tap windows, the width first and then the height,
each pass rounded half up and clipped to 0..255 as PIL's 8-bit passes are. PIL's weights are 22-bit
fixed point, these float32: a pixel may differ by a level where a sum lands on a half.
Elementwise float32 only, so TF32 matmul settings cannot change the result. Sizes come from the
host (Python ints) and the taps are computed there: nothing reads back from the device, which would
wait for the GPU's queued work (the previous step) before the next batch could be queued.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

SUPPORTS = {"bilinear": 1.0, "bicubic": 2.0}  # PIL's filter supports
_BICUBIC_A = -0.5  # PIL's bicubic


def _pil_filter(x: torch.Tensor, resample: str) -> torch.Tensor:
    x = x.abs()
    if resample == "bilinear":
        return (1 - x).clamp_(min=0)
    a = _BICUBIC_A
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the host) on ``device``; to a GPU through pinned memory, without waiting for its queued work."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _taps(
    lengths: Sequence[int], size: int, resample: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's taps to resize lines of ``lengths`` (``B``) to ``size``: ``index`` and ``weight``, both ``B x S x K``.

    Computed on the host in float64, as PIL does, then sent to ``device``.
    """
    lines = torch.tensor(lengths, dtype=torch.float64)
    scale = lines / size
    stretch = scale.clamp(min=1.0)  # shrinking widens the filter: PIL's antialiasing
    support = (SUPPORTS[resample] * stretch)[:, None]
    center = (torch.arange(size, dtype=torch.float64) + 0.5) * scale[:, None]
    first = torch.floor(center - support + 0.5).clamp(min=0)
    last = torch.minimum(torch.floor(center + support + 0.5), lines[:, None])  # exclusive
    count = math.ceil(2 * SUPPORTS[resample] * max(1.0, max(lengths) / size)) + 2
    index = first[..., None] + torch.arange(count, dtype=torch.float64)
    weight = _pil_filter((index + 0.5 - center[..., None]) / stretch[:, None, None], resample)
    weight = weight * (index < last[..., None])
    weight = weight / weight.sum(-1, keepdim=True)
    index = index.clamp(max=max(lengths) - 1).long()
    return host_to_device(index, device), host_to_device(weight.float(), device)


def _resample_lines(planes: torch.Tensor, lengths: Sequence[int], size: int, resample: str) -> torch.Tensor:
    """``B x A x S x C``: dim 2 of ``planes`` (``B x A x L x C``, line ``b`` valid up to ``lengths[b]``) resized."""
    index, weight = _taps(lengths, size, resample, planes.device)
    batch, across, _, channels = planes.shape
    out = torch.zeros(batch, across, size, channels, device=planes.device)
    for k in range(index.shape[-1]):
        taken = planes.gather(2, index[:, None, :, k, None].expand(batch, across, size, channels))
        out.addcmul_(taken, weight[:, None, :, k, None])
    return out.add_(0.5).floor_().clamp_(0, 255)  # an 8-bit pass: rounded half up, clipped


def resize_batch(
    images: Sequence[torch.Tensor], size: int, resample: str, *, canvas_elements: int = 2**26
) -> torch.Tensor:
    """``B x C x S x S`` float (0..255 integers) of ``images`` (``H_i x W_i x C`` or ``H_i x W_i`` uint8) resized as PIL.

    Images are padded into canvases of similar sizes (sorted by area) of at most ``canvas_elements``
    values each (256 MB of float32 by default; a larger image gets one of its own), which bounds the
    memory whatever the mix of sizes.

    Images already ``S x S`` pass unchanged, whatever ``resample`` is.

    Raises:
        ValueError: no image, or one to resize with a filter other than PIL's bilinear and bicubic.
    """
    if not images:
        raise ValueError("resize_batch needs at least one image")
    images = [image[..., None] if image.ndim == 2 else image for image in images]
    if all(image.shape[:2] == (size, size) for image in images):
        return torch.stack(images).permute(0, 3, 1, 2).float()
    if resample not in SUPPORTS:
        raise ValueError(f"resize_batch does PIL's {sorted(SUPPORTS)}, not {resample!r}")
    device, channels = images[0].device, images[0].shape[2]
    out = torch.empty(len(images), channels, size, size, device=device)
    groups: list[list[int]] = [[]]
    for i in sorted(range(len(images)), key=lambda i: images[i].shape[0] * images[i].shape[1]):
        group = groups[-1]
        height, width = (max(images[j].shape[d] for j in (*group, i)) for d in (0, 1))
        if group and (len(group) + 1) * height * width * channels > canvas_elements:
            groups.append(group := [])
        group.append(i)
    for group in groups:
        resized = _resize_canvas([images[j] for j in group], size, resample)
        out.index_copy_(0, host_to_device(torch.tensor(group), device), resized)
    return out


def _resize_canvas(images: Sequence[torch.Tensor], size: int, resample: str) -> torch.Tensor:
    """``resize_batch`` of ``H_i x W_i x C`` images padded into one canvas."""
    device, channels = images[0].device, images[0].shape[2]
    heights, widths = [image.shape[0] for image in images], [image.shape[1] for image in images]
    canvas = torch.zeros(len(images), max(heights), max(widths), channels, device=device)
    for slot, image in zip(canvas, images):
        slot[: image.shape[0], : image.shape[1]] = image
    rows = _resample_lines(canvas, widths, size, resample)  # B x H x S x C: the width first, as PIL
    out = _resample_lines(rows.transpose(1, 2), heights, size, resample)  # B x S(w) x S(h) x C
    return out.permute(0, 3, 2, 1)
