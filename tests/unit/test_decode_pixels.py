"""The loader's image decoding (OpenCV for plain JPEGs, PIL otherwise) gives PIL's pixels (issue 21)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fixture_data.reference_loader import reference_decode_mask_pair
from PIL import Image

from clipseg.data.sample_io import encode_png, make_row
from clipseg.data.streaming import CorruptRow, decode_mask_pair, decode_row

RNG = np.random.default_rng(0)
PHOTO = RNG.integers(0, 256, (75, 101, 3), dtype=np.uint8)  # odd sizes: chroma subsampling edges
MASK = encode_png(RNG.random((75, 101)) > 0.5)


def encoded(mode: str, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PHOTO).convert(mode).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rotated_by_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90": PIL (and so the loader) ignores it
    return encoded("RGB", exif=exif)


KINDS = {
    "jpeg 4:2:0": lambda: encoded("RGB", quality=90),
    "jpeg 4:2:2": lambda: encoded("RGB", subsampling=1),
    "jpeg 4:4:4": lambda: encoded("RGB", subsampling=0),
    "jpeg progressive": lambda: encoded("RGB", progressive=True),
    "jpeg gray": lambda: encoded("L"),
    "jpeg cmyk": lambda: encoded("CMYK"),
    "jpeg exif rotated": rotated_by_exif,
    "png rgba": lambda: encoded("RGBA", "PNG"),
    "png palette": lambda: encoded("P", "PNG"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_decoded_pixels_equal_pil(kind):
    data = KINDS[kind]()
    rgb, alpha = decode_mask_pair(data, MASK)
    expected_rgb, expected_alpha = reference_decode_mask_pair(data, MASK)
    assert rgb.shape == expected_rgb.shape == (75, 101, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, expected_rgb)
    assert np.array_equal(alpha, expected_alpha)


@pytest.mark.parametrize("cut", [40, 2000, -10])
def test_a_truncated_jpeg_is_a_corrupt_row(cut):
    row = make_row("task-7", encoded("RGB")[:cut], MASK)
    with pytest.raises(CorruptRow, match="'task-7'"):
        decode_row(row)
