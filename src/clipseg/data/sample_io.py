"""Helpers shared by the raw-format readers: file checks, PNG coding, seeded choices and row assembly.

Every check raises ``BadSample`` naming the sample, so a reader can turn any failure of one sample into
a yielded ``BadSample`` and go on with the next.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from clipseg.core.images import MAX_PIXELS_ENV, TooManyPixels, max_pixels, open_decoded
from clipseg.data.schema import NO_CLASS, BadSample

T = TypeVar("T")


@contextmanager
def decoded(path: Path, sample_id: str, what: str, data: bytes | None = None) -> Iterator[Image.Image]:
    """The decoded image of ``path`` (or of its bytes ``data``, already read) within the pixel limit of
    ``clipseg.core.images`` (``BadSample`` above it); unreadable files raise PIL's errors for the caller."""
    try:
        with open_decoded(path if data is None else io.BytesIO(data), max_pixels()) as img:
            yield img
    except TooManyPixels as err:
        hint = "PIL.Image.MAX_IMAGE_PIXELS" if err.pil else MAX_PIXELS_ENV
        raise BadSample(sample_id, f"{what} {path}: {err} ({hint} raises it)") from None


def read_image(path: Path, sample_id: str) -> tuple[bytes, tuple[int, int]]:
    """The encoded bytes of ``path`` exactly as on disk and the image's ``(width, height)``.

    The image is decoded once so that truncated or corrupt files are caught here rather than in a
    loader worker in the middle of training.
    """
    if not path.is_file():
        raise BadSample(sample_id, f"image {path} is missing")
    data = path.read_bytes()
    try:
        with decoded(path, sample_id, "image", data) as img:
            return data, img.size
    except UnidentifiedImageError:
        raise BadSample(sample_id, f"image {path} is not in a known image format") from None
    except (OSError, SyntaxError) as err:
        raise BadSample(sample_id, f"image {path} is not readable ({err})") from None


def read_png_array(path: Path, sample_id: str, what: str = "mask") -> np.ndarray:
    """The values of an 8-bit PNG as an ``H x W`` uint8 array.

    Label PNGs store class ids either as palette indices (VOC ``SegmentationClass``, mode P) or as gray
    values (``SegmentationClassAug``, COCO-20i, alpha mattes; mode L): both read back as the stored
    numbers. An alpha matte with an alpha channel (LA / RGBA) keeps its gray / first channel; colour
    label images would need a palette lookup and are refused.
    """
    if not path.is_file():
        raise BadSample(sample_id, f"{what} {path} is missing")
    try:
        with decoded(path, sample_id, what) as img:
            if img.mode in ("L", "P"):
                return np.asarray(img, dtype=np.uint8).copy()
            if img.mode in ("LA", "RGB", "RGBA") and what == "alpha matte":
                return np.asarray(img.convert("L"), dtype=np.uint8).copy()
            raise BadSample(sample_id, f"{what} {path} has mode {img.mode}; expected an 8-bit L or P PNG")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise BadSample(sample_id, f"{what} {path} is not readable ({err})") from None


def encode_png(array: np.ndarray) -> bytes:
    """Encode an ``H x W`` uint8 (or bool, stored as 0/255) array as a mode-L PNG."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"encode_png expects an H x W uint8 or bool array, got {array.dtype} {array.shape}")
    buf = io.BytesIO()
    Image.fromarray(array, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def check_size(sample_id: str, what: str, actual: tuple[int, int], expected: tuple[int, int]) -> None:
    """Raise ``BadSample`` when two ``(width, height)`` sizes differ."""
    if tuple(actual) != tuple(expected):
        raise BadSample(
            sample_id, f"{what} is {actual[0]}x{actual[1]} but the image is {expected[0]}x{expected[1]}"
        )


def sample_rng(seed: int, *key: object) -> random.Random:
    """A generator seeded by ``seed`` and ``key`` only: a sample's draws ignore what was read before it."""
    # str seeds are hashed with SHA-512 by random.Random, so this is stable across processes and runs.
    return random.Random(":".join(map(str, (seed, *key))))


def seeded_candidates(
    rng: random.Random,
    pool: Sequence[T],
    allowed: Callable[[T], bool],
    preferred: Callable[[T], bool] = lambda _: True,
) -> Iterator[T]:
    """The ``allowed`` members of ``pool`` in an order drawn from ``rng``, ``preferred`` ones first.

    Lazy, so a caller can try candidates in turn until one loads: the order walks ``pool`` from a random
    start with a random stride coprime to its length, which costs O(1) per candidate even for the
    thousands of PhraseCut tasks sharing a phrase like "sky" (a full shuffle per sample would be O(n^2)).
    """
    n = len(pool)
    if n == 0:
        return
    start, stride = rng.randrange(n), 1
    if n > 2:
        stride = rng.randrange(1, n)
        while math.gcd(stride, n) != 1:
            stride = rng.randrange(1, n)
    for wanted in (True, False):
        for k in range(n):
            candidate = pool[(start + k * stride) % n]
            if allowed(candidate) and preferred(candidate) == wanted:
                yield candidate


def load_json(path: Path) -> Any:
    """Parse a dataset's JSON file; a missing or broken top-level file stops the conversion."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is the dataset root right?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def first_existing(paths: Sequence[Path]) -> Path:
    """The first of ``paths`` that exists (datasets are unpacked with slightly different layouts)."""
    for path in paths:
        if path.exists():
            return path
    raise FileNotFoundError("none of these exists: " + ", ".join(map(str, paths)))


def make_row(
    sample_id: str,
    image: bytes,
    mask: bytes,
    *,
    text: str = "",
    class_id: int = NO_CLASS,
    support_image: bytes | None = None,
    support_mask: bytes | None = None,
    label: bytes | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A shard row with every ``SHARD_FEATURES`` column; ``meta`` is stored as a JSON string."""
    return {
        "sample_id": sample_id,
        "image": image,
        "mask": mask,
        "text": text,
        "class_id": int(class_id),
        "support_image": support_image,
        "support_mask": support_mask,
        "label": label,
        "meta": json.dumps(meta or {}, sort_keys=True),
    }
