"""The loader's per-sample steps written the plain way (as before issue 21), for "same output" tests.

``visual_prompt``, ``preprocess`` and ``decode_mask_pair`` take shortcuts for speed (uint8 crops,
lookup tables, mixing only on the mask's edge); these references compute everything in float over
the whole image, so a test can check that the shortcuts give the same numbers.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from clipseg.core.config import PreprocessConfig
from clipseg.core.preprocess import resize_image
from clipseg.core.prompts import VisualPromptStyle


def reference_visual_prompt(
    image: np.ndarray, mask: np.ndarray, size: int, style: VisualPromptStyle
) -> np.ndarray:
    """``size x size x 3`` uint8 visual prompt: float over the whole image, mixed everywhere."""
    img = image.astype(np.float32)
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)
    if m.max() > 0 and style.crop_context is not None:
        ys, xs = np.nonzero(m > 0.5) if (m > 0.5).any() else np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = max(y1 - y0, x1 - x0) * (1 + 2 * style.crop_context)
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        top, left = round(cy - side / 2), round(cx - side / 2)
        bottom, right = round(cy + side / 2), round(cx + side / 2)
        pad = max(0, -top, -left, bottom - img.shape[0], right - img.shape[1])
        if pad:
            img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
            m = np.pad(m, pad)
        img = img[top + pad : bottom + pad, left + pad : right + pad]
        m = m[top + pad : bottom + pad, left + pad : right + pad]
    img = np.asarray(Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BICUBIC))
    m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
    img = img.astype(np.float32)
    if m.max() == 0:
        return img.astype(np.uint8)
    background = img
    if style.blur_sigma > 0:
        background = cv2.GaussianBlur(
            img, ksize=(0, 0), sigmaX=style.blur_sigma, borderType=cv2.BORDER_REFLECT
        )
    background = background * style.background_factor
    out = m[..., None] * img + (1 - m[..., None]) * background
    if style.highlight:
        out = out * (0.85 + 0.15 * m[..., None])
    return out.clip(0, 255).astype(np.uint8)


def reference_normalize(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """``3 x H x W`` float32 ``(image / 255 - mean) / std``, element by element."""
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    scaled = image.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))


def reference_preprocess(
    images: list[np.ndarray] | np.ndarray, config: PreprocessConfig, out: np.ndarray | None = None
) -> np.ndarray:
    """``B x 3 x S x S``: resize, normalize each image, stack (copied into ``out`` when given)."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    batch = np.stack(
        [reference_normalize(resize_image(i, config.size, config.resample), config) for i in images]
    )
    if out is not None:
        out[...] = batch
    return batch


def reference_decode_mask_pair(image: bytes, mask: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``H x W x 3`` uint8 and ``H x W`` float32 in [0, 1], through PIL ``convert`` and a float division."""
    with Image.open(io.BytesIO(image)) as img:
        rgb = np.asarray(img.convert("RGB"))
    with Image.open(io.BytesIO(mask)) as img:
        alpha = np.asarray(img.convert("L")).astype(np.float32) / 255.0
    return rgb, alpha
