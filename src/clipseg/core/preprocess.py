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


def normalize(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """``3 x H x W`` float32 ``(image / 255 - mean) / std`` of an ``H x W x 3`` uint8 (or float 0..255) image."""
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    if image.dtype == np.uint8:
        # 256 values per channel: a lookup table of the same float32 formula gives the same numbers
        # ~5x faster (training normalizes two images per sample).
        table = (np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0) - mean) / std
        channels_last = cv2.LUT(np.ascontiguousarray(image), table.reshape(1, 256, 3))
        return np.ascontiguousarray(channels_last.transpose(2, 0, 1))
    scaled = image.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))


def preprocess(images: np.ndarray | Sequence[np.ndarray], config: PreprocessConfig) -> np.ndarray:
    """Model input ``B x 3 x S x S`` (float32) of ``B`` images (``H_i x W_i x 3`` uint8, any sizes).

    One image (a 3-d array) gives ``1 x 3 x S x S``.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    return np.stack([normalize(resize_image(img, config.size, config.resample), config) for img in images])
