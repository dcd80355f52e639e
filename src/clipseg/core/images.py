"""Reading user images safely: one clear error per bad file, every common mode converted to RGB."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageLike = str | Path | bytes | Image.Image | np.ndarray

# Larger inputs are refused rather than decoded: a 1 GB bitmap would only exhaust memory.
MAX_PIXELS = 120_000_000
MAX_PIXELS_ENV = "CLIPSEG_MAX_PIXELS"  # raises (or lowers) the limit, e.g. CLIPSEG_MAX_PIXELS=400000000


def max_pixels() -> int:
    """The largest image (width x height) that is decoded: ``$CLIPSEG_MAX_PIXELS``, else ``MAX_PIXELS``.

    Raises:
        ImageError: the variable is set to something other than a positive whole number.
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").replace("_", "").replace(",", "")
    if not value:
        return MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ImageError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: expected a number of pixels")
    return int(value)


class ImageError(ValueError):
    """An input image that cannot be used; the message names the input and the reason."""


class TooManyPixels(ImageError):
    """An image over a pixel limit: ``size`` (width, height) from its header, or ``None`` where PIL
    refused it (frames or tiles larger than the header says, or an image over PIL's own limit).
    ``pil``: the limit was PIL's (``pil_refusal``), below the one asked for."""

    def __init__(self, size: tuple[int, int] | None, limit: int, *, pil: bool = False) -> None:
        self.size, self.limit, self.pil = size, limit, pil
        shown = f"{size[0]}x{size[1]}" if size else "the image"
        whose = "PIL's limit (twice PIL.Image.MAX_IMAGE_PIXELS, set by this program)" if pil else "the limit"
        super().__init__(f"{shown} is larger than {whose} of {limit:,} pixels")


def pil_refusal() -> int | None:
    """The size (pixels) above which PIL itself refuses to open an image (twice its process-wide
    ``Image.MAX_IMAGE_PIXELS``, which belongs to the program: read here, never set), or None."""
    return None if Image.MAX_IMAGE_PIXELS is None else 2 * Image.MAX_IMAGE_PIXELS


def let_pil_open(limit: int) -> None:
    """For programs, not libraries (the ``clipseg`` commands call it once at start, before any thread):
    raise PIL's process-wide limit so that PIL opens every image up to ``limit`` pixels and the guard
    (``open_decoded``) alone decides."""
    refusal = pil_refusal()
    if refusal is not None and limit > refusal:
        Image.MAX_IMAGE_PIXELS = limit


@contextmanager
def open_decoded(source: Path | BinaryIO, limit: int) -> Iterator[Image.Image]:
    """The image of a file or byte stream, decoded, if its width x height is at most ``limit``: the one
    guard against decompression bombs (the size is read from the header, before any pixel is decoded).

    PIL's process-wide ``Image.MAX_IMAGE_PIXELS`` is the program's and is left as it is (a library that
    set it would change it for the rest of the program, and for the server's other threads mid-read):
    its warning (above it) is silenced, since ``limit`` decides; its refusal (above twice it) stands,
    and an image PIL refuses below ``limit`` is refused with PIL's limit named (``let_pil_open``).

    Raises:
        TooManyPixels: over ``limit`` (or over PIL's refusal, when that is lower).
        PIL.UnidentifiedImageError, OSError, SyntaxError: not an image, or a truncated or corrupt one
            (callers name the input in their own terms).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except Image.DecompressionBombError:
            refusal = pil_refusal()
            if refusal is not None and refusal < limit:
                raise TooManyPixels(None, refusal, pil=True) from None
            raise TooManyPixels(None, limit) from None
    with img:
        if img.width * img.height > limit:
            raise TooManyPixels(img.size, limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
        except Image.DecompressionBombError:  # frames or tiles PIL counts larger than the header says
            raise TooManyPixels(None, limit) from None
        yield img


def _too_large(name: str, err: TooManyPixels) -> ImageError:
    if err.pil:
        return ImageError(f"{name}: {err}; raise PIL.Image.MAX_IMAGE_PIXELS in this program to open it")
    return ImageError(
        f"{name}: {err}; raise it with the environment variable {MAX_PIXELS_ENV} "
        f"(e.g. {MAX_PIXELS_ENV}={2 * err.limit})"
    )


def _to_rgb_array(img: Image.Image, name: str) -> np.ndarray:
    limit = max_pixels()
    if img.width * img.height > limit:
        raise _too_large(name, TooManyPixels(img.size, limit))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit grayscale: rescale the value range to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparent pixels on white, as an image viewer would show them.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _decode(source: Path | BinaryIO, name: str) -> np.ndarray:
    """An encoded image (a file, or its bytes) through the pixel guard (``open_decoded``), as RGB."""
    try:
        with open_decoded(source, max_pixels()) as img:
            return _to_rgb_array(img, name)
    except TooManyPixels as err:
        raise _too_large(name, err) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"{name}: not a readable image ({err})") from None


def load_image(image: ImageLike, name: str | None = None) -> np.ndarray:
    """Return ``image`` as an ``H x W x 3`` uint8 array.

    Accepts a path, an encoded file's bytes, a PIL image or an array (``H x W``, ``H x W x 1|3|4``; uint8, uint16 or float in
    [0, 1]). Grayscale, RGBA, palette and 16-bit inputs are converted; corrupt, empty or huge files
    raise ``ImageError`` naming the input.
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        name = name or str(path)
        if not path.is_file():
            raise ImageError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        return _decode(path, name)
    name = name or "image"
    if isinstance(image, bytes):
        if not image:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        return _decode(io.BytesIO(image), name)
    if isinstance(image, Image.Image):
        return _to_rgb_array(image, name)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, name)
    raise ImageError(f"{name}: expected a path, bytes, PIL image or numpy array, got {type(image).__name__}")


def _array_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an H x W or H x W x 3/4 array, got shape {arr.shape}")
    if arr.size == 0:
        raise ImageError(f"{name}: the array is empty (shape {arr.shape})")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535 * 255).round().astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ImageError(f"{name}: float arrays must hold finite values in [0, 1]")
        arr = (arr * 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        return _to_rgb_array(Image.fromarray(arr, "RGBA"), name)
    return np.ascontiguousarray(arr)


def load_mask(mask: ImageLike, name: str | None = None) -> np.ndarray:
    """Return a mask as an ``H x W`` float32 array in [0, 1] (any image: nonzero gray levels scale to 1)."""
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        m = mask.astype(np.float32)
        return m / 255.0 if m.max() > 1 else m
    gray = load_image(mask, name).mean(axis=2)
    return (gray / 255.0).astype(np.float32)
