"""Small parquet shard sets for the streaming tests, made from the shapes world and stand-in readers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipseg.data.prepare import prepare
from clipseg.data.sample_io import encode_png, make_row
from clipseg.data.schema import BadSample


def write_shapes_shards(
    out: Path, *, splits=("val",), length: int = 12, size: int = 48, shard_size: int = 4
) -> dict:
    """``clipseg prepare shapes`` into ``out``: ``length`` rows per split, ``size``² scenes."""
    return prepare(
        "shapes",
        None,
        out,
        splits=list(splits),
        shard_size=shard_size,
        options={"length": length, "size": size},
    )


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def referring_rows(
    n: int, *, size: tuple[int, int] = (40, 30), phrases=("red car", "black cow", "tree")
) -> list[dict]:
    """PhraseCut-like rows: ``n`` images with a rectangle mask each; every row has a support of another image."""
    rows = []
    h, w = size[1], size[0]
    for i in range(n):
        image = np.full((h, w, 3), 40 * (i % 6), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[2 + i % 5 : 12 + i % 5, 3:20] = 255
        rows.append(
            make_row(
                f"task-{i}",
                jpeg(image),
                encode_png(mask),
                text=phrases[i % len(phrases)],
                support_image=jpeg(np.full((h, w, 3), 200, np.uint8)) if i % 4 else None,
                support_mask=encode_png(mask) if i % 4 else None,
                meta={"image_id": i},
            )
        )
    return rows


def stand_in_rows(
    src: Path | None, split: str, *, n: int = 10, bad_every: int = 0
) -> Iterator[dict[str, Any] | BadSample]:
    """A stand-in reader for ``prepare``: ``n`` good rows, a ``BadSample`` every ``bad_every`` rows and one duplicate."""
    rows = referring_rows(n)
    for i, row in enumerate(rows):
        if bad_every and i % bad_every == 0:
            yield BadSample(f"bad-{split}-{i}", "unreadable image")
        yield row
    yield rows[0]  # a duplicate sample_id: counted as skipped, never silently dropped
