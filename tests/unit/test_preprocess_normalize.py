"""``normalize`` of uint8 images (a lookup table) gives the same float32 numbers as the formula."""

from __future__ import annotations

import numpy as np
from fixture_data.reference_loader import reference_normalize

from clipseg.core.config import CLIP_MEAN, CLIP_STD, PreprocessConfig
from clipseg.core.preprocess import normalize, preprocess, resize_image


def test_uint8_lookup_equals_the_float32_formula_for_every_value():
    config = PreprocessConfig(size=16, mean=CLIP_MEAN, std=CLIP_STD)
    image = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None, None], (256, 5, 3)).copy()
    image[:, 3] = image[::-1, 3]  # channels and columns differ
    got = normalize(image, config)
    assert got.dtype == np.float32 and got.shape == (3, 256, 5) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, reference_normalize(image, config))
    for channel, (mean, std) in enumerate(zip(CLIP_MEAN, CLIP_STD)):
        for value in (0, 1, 77, 128, 254, 255):  # float32 scalar arithmetic, one value at a time
            want = (np.float32(value) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
            assert got[channel, value, 0] == want and got[channel, 255 - value, 3] == want


def test_preprocess_writes_into_a_given_batch_buffer():
    config = PreprocessConfig(size=8)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, 11, 3), dtype=np.uint8) for h in (8, 13)]
    batch = np.full((2, 3, 8, 8), np.nan, np.float32)
    assert preprocess(images, config, out=batch) is batch
    np.testing.assert_array_equal(batch, preprocess(images, config))
    strided = np.full((2, 3, 8, 8), np.nan, np.float32).transpose(0, 1, 3, 2)  # not C-contiguous
    np.testing.assert_array_equal(preprocess(images, config, out=strided), batch)
    as_float = np.empty((3, 8, 8), np.float32)
    normalize(resize_image(images[0], 8, config.resample).astype(np.float32), config, out=as_float)
    np.testing.assert_array_equal(as_float, batch[0])
