"""``clipseg prepare folder --src DIR --out OUT``: a folder of images and masks listed in a CSV or JSONL file.

``DIR/annotations.csv`` (or ``DIR/annotations.jsonl``, one JSON object per line with the same keys)
has the columns ``image,mask,prompt[,split]``, paths relative to ``DIR``::

    image,mask,prompt
    photos/0001.jpg,masks/0001-cat.png,cat
    photos/0001.jpg,masks/0001-sofa.png,grey sofa

One row per (image, mask, prompt); an image may have many rows, and rows of the same image and prompt
are merged (their masks' union). A mask pixel above 127 is the object (see
``custom.read_binary_mask`` for gray, palette, RGB, transparent and 16-bit files). ``split`` is
``train`` or ``val``; without that column a seeded ``val_fraction`` of the images (default 10 %)
becomes ``val``, by image, so that no image is in both splits.

Skipped (listed with the reason in ``skipped.json``): a missing or unreadable image or mask, a mask
whose size differs from its image's, an empty prompt, an unknown split name. A file without the
``image``, ``mask`` or ``prompt`` column stops with an error before anything is written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipseg.core.files import sha256_of
from clipseg.data.sample_io import check_size, encode_png, make_row, read_image
from clipseg.data.schema import BadSample
from clipseg.data.user_data import RowTasks, check_split, read_binary_mask, validation_images

ANNOTATION_FILES = ("annotations.csv", "annotations.jsonl")
REQUIRED_COLUMNS = ("image", "mask", "prompt")


@dataclass(frozen=True)
class FolderTask:
    """One row to write: an image, a prompt, the masks to merge, the image's other prompts."""

    sample_id: str
    root: Path
    image: str
    prompt: str
    masks: tuple[str, ...]
    image_prompts: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Line:
    sample_id: str
    image: str
    mask: str
    prompt: str
    split: str | None


def annotation_file(src: Path) -> Path:
    """``src/annotations.csv`` or ``src/annotations.jsonl`` (a file path is taken as is)."""
    if src.is_file():
        return src
    for name in ANNOTATION_FILES:
        if (src / name).is_file():
            return src / name
    raise FileNotFoundError(f"{src} has neither annotations.csv nor annotations.jsonl")


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a CSV or JSONL annotation file; a missing column stops before any row."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        if path.suffix == ".jsonl":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path} line {number} is not valid JSON: {err}") from None
                missing = [c for c in REQUIRED_COLUMNS if c not in record]
                if missing:
                    raise ValueError(f"{path} line {number} lacks the key(s) {', '.join(missing)}")
                yield number, record
            return
        reader = csv.DictReader(handle)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{path} lacks the column(s) {', '.join(missing)}; its header is {','.join(header) or '(empty)'} "
                f"and must name {','.join(REQUIRED_COLUMNS)}[,split]"
            )
        reader.fieldnames = header
        for record in reader:
            yield reader.line_num, record


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def read_lines(path: Path) -> list[_Line]:
    """Every annotation row (paths and prompts only: no pixels are read here)."""
    return [
        _Line(
            sample_id=f"{path.name}:{number}",
            image=_text(record.get("image")),
            mask=_text(record.get("mask")),
            prompt=" ".join(_text(record.get("prompt")).split()),
            split=_text(record.get("split")) or None,
        )
        for number, record in _records(path)
    ]


def folder_tasks(
    src: Path, split: str, *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[FolderTask], list[BadSample]]:
    """The tasks of ``split`` (rows of one image and prompt merged) and the rows refused on sight."""
    check_split(split)
    path = annotation_file(src)
    lines = read_lines(path)
    if not lines:  # a header alone: "0 rows" and exit 0 looked like success
        raise ValueError(f"{path} has no annotation rows; add one row per (image, mask, prompt)")
    bad: list[BadSample] = []
    good: list[_Line] = []
    for line in lines:
        if not line.image or not line.mask:
            bad.append(BadSample(line.sample_id, "empty image or mask path"))
        elif not line.prompt:
            bad.append(BadSample(line.sample_id, f"empty prompt for image {line.image}"))
        elif line.split is not None and line.split not in ("train", "val"):
            bad.append(BadSample(line.sample_id, f"split {line.split!r} is neither train nor val"))
        else:
            good.append(line)
    has_split_column = any(line.split is not None for line in lines)
    val = set() if has_split_column else validation_images([x.image for x in good], val_fraction, seed)

    def split_of(line: _Line) -> str:
        if has_split_column:
            return line.split or "train"
        return "val" if line.image in val else "train"

    groups: dict[tuple[str, str], list[_Line]] = {}
    prompts: dict[str, list[str]] = {}
    for line in good:
        groups.setdefault((line.image, line.prompt), []).append(line)
        if line.prompt not in prompts.setdefault(line.image, []):
            prompts[line.image].append(line.prompt)
    tasks = [
        FolderTask(
            sample_id=rows[0].sample_id,
            root=path.parent,
            image=image,
            prompt=prompt,
            masks=tuple(r.mask for r in rows),
            image_prompts=tuple(prompts[image]),
        )
        for (image, prompt), rows in groups.items()
        if split_of(rows[0]) == split
    ]
    return tasks, [b for b in bad if split == "train"]  # refused rows are listed once, under train


def folder_row(task: FolderTask) -> dict[str, Any]:
    """The shard row of one task (runs in a worker process); ``BadSample`` names what is wrong."""
    image, size = read_image(task.root / task.image, task.sample_id)
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for name in task.masks:
        part = read_binary_mask(task.root / name, task.sample_id)
        check_size(task.sample_id, f"mask {name}", (part.shape[1], part.shape[0]), size)
        mask |= part
    return make_row(
        task.sample_id,
        image,
        encode_png(mask),
        text=task.prompt,
        meta={"image_id": task.image, "prompts": list(task.image_prompts)},
    )


def source_digest(src: Path, **options: Any) -> str:
    """sha256 of the annotation file: ``prepare`` converts again when it changes."""
    return sha256_of(annotation_file(Path(src)))


def iter_rows(
    src: Path, split: str = "train", *, val_fraction: float = 0.1, seed: int = 0, workers: int = 1
) -> RowTasks[FolderTask]:
    """Shard rows (``SHARD_FEATURES``) of ``split`` ("train" or "val") of the folder ``src``.

    The annotation file is read and checked at once (a missing column raises ``ValueError`` before
    anything is written); images and masks are read as the rows are iterated, by ``workers`` processes.
    """
    tasks, refused = folder_tasks(Path(src), split, val_fraction=val_fraction, seed=seed)
    return RowTasks(tasks, folder_row, workers=workers, refused=refused)
