"""One guard against decompression bombs (``clipseg.core.images.open_decoded``), used by every reader of
users' images: ``predict`` (``load_image``), the data readers of ``prepare`` and the server's uploads."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from clipseg.core.images import ImageError, TooManyPixels, load_image, open_decoded
from clipseg.data.sample_io import read_image, read_png_array
from clipseg.data.schema import BadSample
from clipseg.data.user_data import read_binary_mask

LIMIT = 100 * 100


@pytest.fixture
def big_png(tmp_path) -> Path:
    path = tmp_path / "big.png"
    Image.new("L", (200, 100)).save(path)  # 20,000 pixels: twice LIMIT
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Any decoding of pixels fails the test: the limit must be read from the header alone."""

    def refuse(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_an_image_over_the_limit_is_refused_from_its_header(big_png, no_decoding):
    refused = pytest.raises(TooManyPixels, match=r"200x100 is larger than the limit of 10,000 pixels")
    with refused as caught, open_decoded(big_png, LIMIT):
        pass
    assert caught.value.size == (200, 100) and caught.value.limit == LIMIT


def test_an_image_within_the_limit_is_decoded(big_png):
    with open_decoded(io.BytesIO(big_png.read_bytes()), 2 * LIMIT) as img:
        assert img.size == (200, 100) and img.tobytes() == bytes(200 * 100)


def test_far_over_pil_s_count_is_refused_by_ours_too(big_png, monkeypatch):
    """PIL refuses (DecompressionBombError) above twice its own limit before the header check; that is
    the same refusal, without a size."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(TooManyPixels, match="the image is larger"), open_decoded(big_png, 20):
        pass


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG of ``width`` x ``height`` pixels with no pixel data: only the header can be read."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + b"\xaeB`\x82")
    return path


def test_pil_s_global_limit_is_the_program_s_and_stays_as_it_was(tmp_path, monkeypatch):
    """A library does not set ``PIL.Image.MAX_IMAGE_PIXELS`` (another part of the program relies on it, and
    the server's threads read images at the same time): the guard reads the header against its own limit."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL warns above this, refuses above 2000
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", "1500")  # ours: between the two
    normal = tmp_path / "normal.png"
    Image.new("L", (40, 30)).save(normal)  # 1200 pixels: over PIL's warning, within ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's warning is the guard's to silence, not the user's to see
        assert load_image(normal).shape == (30, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000
    too_large = png_header(tmp_path / "large.png", 50, 40)  # 2000: over ours, not refused by PIL
    with pytest.raises(ImageError, match=r"large.png: 50x40 is larger than the limit of 1,500 pixels"):
        load_image(too_large)  # from the header: the file has no pixels to decode
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_an_image_pil_refuses_below_our_limit_names_pil_s_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv(
        "CLIPSEG_MAX_PIXELS", str(LIMIT)
    )  # above PIL's refusal (2000): the program's limit wins
    path = png_header(tmp_path / "large.png", 50, 50)  # 2500 pixels
    refused = r"large.png: the image is larger than PIL's limit .* of 2,000 pixels; raise PIL.Image.MAX_IMAGE_PIXELS"
    with pytest.raises(ImageError, match=refused):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_predict_s_reader_uses_the_guard(big_png, monkeypatch, no_decoding):
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(LIMIT))
    with pytest.raises(ImageError, match=r"big.png: 200x100 is larger than .* CLIPSEG_MAX_PIXELS="):
        load_image(big_png)


def test_encoded_bytes_go_through_the_guard_too(big_png, monkeypatch):
    """``load_image(bytes)``: what the Ray reader decodes for an object-store URI (``s3://...``)."""
    data = big_png.read_bytes()
    assert load_image(data, name="s3://b/big.png").shape == (100, 200, 3)
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(LIMIT))
    with pytest.raises(ImageError, match=r"s3://b/big.png: 200x100 is larger than .* CLIPSEG_MAX_PIXELS="):
        load_image(data, name="s3://b/big.png")
    with pytest.raises(ImageError, match=r"s3://b/x.png: not a readable image"):
        load_image(b"not a png", name="s3://b/x.png")


def test_the_ray_reader_of_a_uri_uses_the_guard(big_png, monkeypatch):
    pytest.importorskip("ray")
    from clipseg.ray.segmenter import _read

    uri = big_png.resolve().as_uri()  # file://..., read through pyarrow's file systems like s3://
    assert _read(uri).shape == (100, 200, 3)
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(LIMIT))
    with pytest.raises(ImageError, match=r"big.png: 200x100 is larger than .* CLIPSEG_MAX_PIXELS="):
        _read(uri)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # PIL's own refusal, which PIL alone words its way
    with pytest.raises(ImageError, match=r"big.png: the image is larger than PIL's limit"):
        _read(uri)


@pytest.mark.parametrize(
    "read",
    [
        lambda path: read_image(path, "s1"),
        lambda path: read_png_array(path, "s1"),
        lambda path: read_binary_mask(path, "s1"),
    ],
    ids=["image", "label png", "binary mask"],
)
def test_prepare_s_readers_use_the_guard(big_png, monkeypatch, no_decoding, read):
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(LIMIT))
    with pytest.raises(
        BadSample, match=r"200x100 is larger than the limit of 10,000 pixels.*CLIPSEG_MAX_PIXELS"
    ):
        read(big_png)


def test_the_server_refuses_uploads_over_its_limit_from_the_header(big_png, no_decoding):
    api = pytest.importorskip("clipseg.serve.api", reason="needs the serve extra")
    with pytest.raises(api.TooLarge, match=r"200x100 pixels is over this server's limit of 10,000"):
        api.read_upload(big_png.read_bytes(), api.UploadLimits(max_pixels=LIMIT))
