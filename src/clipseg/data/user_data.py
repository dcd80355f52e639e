"""What the readers of users' own data (``folder``, ``coco``) share: masks, the split by image, parallel rows.

Both readers first build a light index (paths, prompts and annotation geometry: no pixels), then turn
each (image, prompt) task into a shard row in worker processes. The index is what tells ``prepare`` the
total for its progress bar; pixels are only ever held for the rows in flight, so memory stays flat in
the dataset size.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import UnidentifiedImageError

from clipseg.data.sample_io import decoded, sample_rng
from clipseg.data.schema import BadSample

T = TypeVar("T")
SPLITS = ("train", "val")
MASK_THRESHOLD = 127  # a mask pixel above this (on the 8-bit scale) is the object
WINDOW_PER_WORKER = 16  # tasks in flight per worker: bounds the rows held in memory


def read_binary_mask(path: Path, sample_id: str) -> np.ndarray:
    """The object pixels of a mask file as an ``H x W`` bool array (pixel > 127 on the 8-bit scale).

    How each kind of file is read:

    - gray (L) PNG / JPEG: the value itself (JPEG noise around 0 and 255 does not matter);
    - 1-bit (mode 1): set pixels are the object;
    - palette (P): each index is looked up in the palette and turned to gray, so the mask reads as it
      looks (white on black); a label PNG that stores small class ids (1, 2, ...) reads as background;
    - RGB: converted to gray (ITU-R 601 luma), so white is the object;
    - with transparency (LA, RGBA, PA): the alpha channel, when any pixel is transparent (a cut-out);
      otherwise the colour, as above;
    - 16-bit (I;16, I): the high byte (value // 256), so a value above 32767 is the object.
    """
    if not path.is_file():
        raise BadSample(sample_id, f"mask {path} is missing")
    try:
        with decoded(path, sample_id, "mask") as img:
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")
            if img.mode in ("LA", "RGBA", "PA"):
                alpha = np.asarray(img.getchannel("A"))
                if alpha.min() < 255:
                    return alpha > MASK_THRESHOLD
                img = img.convert("RGB")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(img, dtype=np.int64) // 256 > MASK_THRESHOLD
            if img.mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):
                return np.asarray(img.convert("L")) > MASK_THRESHOLD
            raise BadSample(sample_id, f"mask {path} has mode {img.mode}; save it as an 8-bit gray PNG")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise BadSample(sample_id, f"mask {path} is not readable ({err})") from None


def validation_images(images: Sequence[str], val_fraction: float, seed: int) -> set[str]:
    """The images of the ``val`` split: a seeded ``val_fraction`` of ``images`` (at least one of two or more).

    The split is by image, so all prompts of an image land in the same split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    unique = sorted(set(images))
    if val_fraction == 0 or len(unique) < 2:
        return set()
    count = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    return set(sample_rng(seed, "val-images").sample(unique, count))


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: your own data has the splits {', '.join(SPLITS)}")


def _call(function: Callable[[T], dict[str, Any]], task: T) -> dict[str, Any] | BadSample:
    try:
        return function(task)
    except BadSample as bad:
        return bad


def _call_packed(args: tuple[Callable[[T], dict[str, Any]], T]) -> dict[str, Any] | BadSample:
    return _call(*args)


class RowTasks(Generic[T]):
    """The rows of ``tasks``, made by ``make_row`` (a module-level function) in ``workers`` processes.

    Sized, so that ``prepare``'s progress bar shows the total; rows come out in task order. A task whose
    ``make_row`` raises ``BadSample`` comes out as that ``BadSample`` (counted and listed as skipped);
    ``refused``, rows the index already rejected, come out first.
    """

    def __init__(
        self,
        tasks: Sequence[T],
        make_row: Callable[[T], dict[str, Any]],
        *,
        workers: int = 1,
        refused: Sequence[BadSample] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.tasks, self.make_row, self.workers, self.refused = tasks, make_row, workers, refused

    def __len__(self) -> int:
        return len(self.refused) + len(self.tasks)

    def __iter__(self) -> Iterator[dict[str, Any] | BadSample]:
        yield from self.refused
        if self.workers == 1 or len(self.tasks) < 2:
            for task in self.tasks:
                yield _call(self.make_row, task)
            return
        window = self.workers * WINDOW_PER_WORKER
        # spawn: a fork of a process that already runs torch / tokenizer threads can deadlock.
        with multiprocessing.get_context("spawn").Pool(self.workers) as pool:
            for start in range(0, len(self.tasks), window):
                chunk = [(self.make_row, task) for task in self.tasks[start : start + window]]
                chunksize = max(1, math.ceil(len(chunk) / (4 * self.workers)))
                yield from pool.imap(_call_packed, chunk, chunksize=chunksize)
