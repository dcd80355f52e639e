"""``visual_prompt`` gives the same pixels as the paper-style reference: float mixing over the whole image.

The training loader builds one visual prompt per sample, so ``visual_prompt`` takes shortcuts (uint8
crop, mixing only on the mask's soft edge); inference uses it too, so its pixels must not move.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixture_data.reference_loader import reference_visual_prompt

from clipseg.core.prompts import VisualPromptStyle, visual_prompt


def random_case(rng: np.random.Generator, kind: str):
    h, w = rng.integers(20, 90, size=2)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(h, w) / 2)
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    if kind == "binary":
        mask = disk.astype(np.float32)
    elif kind == "soft":  # an alpha matte: a few values above 0.5 or none at all
        mask = np.clip(1.2 - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / r, 0, 1).astype(np.float32)
        mask *= rng.choice([1.0, 0.4])
    elif kind == "uint8":
        mask = disk.astype(np.uint8) * 255
    elif kind == "bool":
        mask = disk
    else:
        mask = np.zeros((h, w), np.float32)
    return image, mask


STYLES = [
    VisualPromptStyle(),
    VisualPromptStyle(highlight=True),
    VisualPromptStyle(blur_sigma=0.0, background_factor=0.5),
    VisualPromptStyle(crop_context=None),
    VisualPromptStyle(crop_context=0.4, blur_sigma=1.5),
    VisualPromptStyle(background_factor=1.8),  # a brightened background must still clip at 255
    VisualPromptStyle(blur_sigma=0.0, background_factor=1.0),
]


KINDS = ["binary", "soft", "uint8", "bool", "empty"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("style", STYLES, ids=lambda s: repr(s)[18:-1])
def test_visual_prompt_pixels_equal_the_reference(kind, style):
    rng = np.random.default_rng([KINDS.index(kind), STYLES.index(style)])
    for _ in range(6):
        image, mask = random_case(rng, kind)
        size = int(rng.choice([16, 37, 64]))
        got = visual_prompt(image, mask, size, style)
        want = reference_visual_prompt(image, mask, size, style)
        assert got.dtype == np.uint8 and got.shape == (size, size, 3) and got.flags.writeable
        np.testing.assert_array_equal(got, want)


def test_float_images_are_clipped_like_uint8():
    rng = np.random.default_rng(0)
    image, mask = random_case(rng, "binary")
    as_float = image.astype(np.float64) * 1.2 - 20  # out of 0..255 on both ends
    want = reference_visual_prompt(as_float, mask, 32, VisualPromptStyle())
    np.testing.assert_array_equal(visual_prompt(as_float, mask, 32), want)
