"""``visual_prompt`` gives the same pixels as the paper-style reference: float mixing over the whole image.

The training loader builds one visual prompt per sample, so ``visual_prompt`` takes shortcuts (uint8
crop, mixing only on the mask's soft edge); inference uses it too, so its pixels must not move.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from clipseg.core.prompts import VisualPromptStyle, visual_prompt


def reference_visual_prompt(image, mask, size, style):
    """The straightforward version: everything in float over the full image, mixed everywhere."""
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
