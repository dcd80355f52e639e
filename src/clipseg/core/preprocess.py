"""The one image preprocessing of training and inference: resize to ``S x S``, scale to [0, 1], normalize.

Training (``data.transforms``), the predictor and every backend call ``preprocess`` with the model's
``PreprocessConfig``, so a model is served on the same pixels it was trained on. The resize is PIL's,
as in the original code (torchvision ``Resize`` on PIL images) and transformers' image processors.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from clipseg.core.config import PreprocessConfig

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def resize_image(image: np.ndarray, size: int, resample: str) -> np.ndarray:
    """``image`` (``H x W x 3`` uint8) resized to ``size x size`` with the PIL filter ``resample``."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), _FILTERS[resample]))


def normalize_table(config: PreprocessConfig) -> np.ndarray:
    """``256 x 3`` float32: ``(value / 255 - mean) / std`` of every uint8 value in each channel.

    ``normalize`` of a uint8 image looks its pixels up here, and so does the training batch normalized
    on the GPU (``data.device_finish.finish_batch``): the same numbers wherever it happens.
    """
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    return (np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0) - mean) / std


def normalize(image: np.ndarray, config: PreprocessConfig, out: np.ndarray | None = None) -> np.ndarray:
    """``3 x H x W`` float32 ``(image / 255 - mean) / std`` of an ``H x W x 3`` uint8 (or float 0..255) image.

    Written into ``out`` (``3 x H x W`` float32, e.g. a batch slot) when given; returns it.
    """
    if out is None:
        out = np.empty((3, *image.shape[:2]), dtype=np.float32)
    if image.dtype != np.uint8:
        scaled = image.astype(np.float32) / np.float32(255.0)
        mean, std = np.asarray(config.mean, np.float32), np.asarray(config.std, np.float32)
        out[...] = ((scaled - mean) / std).transpose(2, 0, 1)
        return out
    # 256 values per channel: the lookup table gives the formula's numbers ~5x faster, written plane
    # by plane straight into ``out`` (training normalizes two images a sample).
    table = normalize_table(config)
    for channel, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
        lookup = np.ascontiguousarray(table[:, channel])
        if out[channel].flags.c_contiguous:
            cv2.LUT(plane, lookup, dst=out[channel])
        else:  # cv2 only writes into contiguous arrays
            out[channel] = cv2.LUT(plane, lookup)
    return out


def preprocess(
    images: np.ndarray | Sequence[np.ndarray], config: PreprocessConfig, out: np.ndarray | None = None
) -> np.ndarray:
    """Model input ``B x 3 x S x S`` (float32) of ``B`` images (``H_i x W_i x 3`` uint8, any sizes).

    One image (a 3-d array) gives ``1 x 3 x S x S``. Written into ``out`` (``B x 3 x S x S`` float32)
    when given; returns it.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    if out is None:
        out = np.empty((len(images), 3, config.size, config.size), dtype=np.float32)
    for img, slot in zip(images, out, strict=True):
        normalize(resize_image(img, config.size, config.resample), config, out=slot)
    return out
