"""PhraseCut (VGPhraseCut_v0) reader: one shard row per referring task.

On-disk format (ChenyunWu/PhraseCutDataset: README "Annotation data structure", utils/file_paths.py,
utils/refvg_loader.py)::

    VGPhraseCut_v0/
      refer_{train,val,test,miniv}.json  list of tasks: task_id, image_id, phrase, phrase_structure,
                                         instance_boxes (xywh), Polygons = per instance a list of
                                         polygons, each a list of [x, y] points
      image_data_split.json              list of images: image_id, width, height, split, url, ...
      images/{image_id}.jpg

A task's mask is the union of every polygon of every instance, rasterised at the size given by
``image_data_split.json`` the way the dataset's own ``utils/data_transfer.py:polygons_to_mask`` does it:
vertices truncated with ``int()``, PIL ``ImageDraw.polygon(outline=1, fill=1)``, polygons with fewer
than two points skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from clipseg.data.sample_io import (
    check_size,
    encode_png,
    load_json,
    make_row,
    read_image,
    sample_rng,
    seeded_candidates,
)
from clipseg.data.schema import BadSample

SPLITS = ("train", "val", "test", "miniv")

# Annotations touching the right / bottom border put vertices at x == width or y == height, and
# Visual Genome polygons overshoot by a fraction of a pixel; PIL clips those. Anything further out
# means the polygon belongs to another image size (or is garbage) and the sample is refused.
BOUNDS_TOLERANCE_PX = 1.0

Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Task:
    """One referring task, validated: ``polygons`` are flattened over the task's instances."""

    task_id: str
    image_id: int
    phrase: str
    polygons: tuple[Polygon, ...]
    n_instances: int


def rasterize_polygons(polygons: Sequence[Sequence[Sequence[float]]], width: int, height: int) -> np.ndarray:
    """Union of ``polygons`` (lists of ``[x, y]``) as a ``height x width`` bool mask, PhraseCut's way."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        if len(polygon) < 2:
            continue
        draw.polygon([(int(x), int(y)) for x, y in polygon], outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def parse_task(entry: Any, index: int, split: str) -> Task:
    """Validate one entry of ``refer_<split>.json``; raise ``BadSample`` naming the task and the problem."""
    task_id = entry.get("task_id") if isinstance(entry, dict) else None
    sample_id = str(task_id) if task_id not in (None, "") else f"refer_{split}.json[{index}]"
    if not isinstance(entry, dict):
        raise BadSample(sample_id, f"entry is a {type(entry).__name__}, not a JSON object")
    missing = [key for key in ("task_id", "image_id", "phrase", "Polygons") if key not in entry]
    if missing:
        raise BadSample(sample_id, f"entry lacks {', '.join(missing)}")
    phrase = entry["phrase"]
    if not isinstance(phrase, str) or not phrase.strip():
        raise BadSample(sample_id, f"phrase must be a non-empty string, got {phrase!r}")
    try:
        image_id = int(entry["image_id"])
        polygons = tuple(
            tuple((float(x), float(y)) for x, y in polygon)
            for instance in entry["Polygons"]
            for polygon in instance
        )
        n_instances = len(entry["Polygons"])
    except (TypeError, ValueError):
        raise BadSample(
            sample_id,
            "image_id must be an integer and Polygons a list (per instance) of lists (per polygon) of [x, y]",
        ) from None
    if not all(math.isfinite(v) for polygon in polygons for point in polygon for v in point):
        raise BadSample(sample_id, "Polygons contain a non-finite coordinate")
    if not any(len(polygon) >= 2 for polygon in polygons):
        raise BadSample(sample_id, "no polygon with at least two points: the mask would be empty")
    return Task(sample_id, image_id, phrase.strip(), polygons, n_instances)


def check_bounds(task: Task, width: int, height: int) -> None:
    """Raise ``BadSample`` when a vertex of ``task`` lies outside its ``width x height`` image."""
    tol = BOUNDS_TOLERANCE_PX
    for polygon in task.polygons:
        for x, y in polygon:
            if not (-tol <= x <= width + tol and -tol <= y <= height + tol):
                raise BadSample(
                    task.task_id, f"polygon point ({x:g}, {y:g}) lies outside the {width}x{height} image"
                )


def dataset_root(src: Path) -> Path:
    """``src`` itself, or its ``VGPhraseCut_v0`` folder when given the folder above it."""
    inner = src / "VGPhraseCut_v0"
    return inner if inner.is_dir() else src


def iter_rows(src: Path, split: str, *, seed: int = 0) -> Iterator[dict[str, Any] | BadSample]:
    """Rows of ``refer_<split>.json``, in file order, with a support sample of the same phrase.

    The support (``support_image`` / ``support_mask``) is another task with the same phrase chosen with
    ``seed``, from another image when one exists; both are None when the phrase is unique. Bad tasks
    (malformed entry, missing or corrupt image, size disagreeing with ``image_data_split.json``,
    out-of-bounds polygon) are yielded as ``BadSample`` naming the task id.
    """
    if split not in SPLITS:
        raise ValueError(f"PhraseCut split must be one of {SPLITS}, got {split!r}")
    root = dataset_root(Path(src))
    entries = load_json(root / f"refer_{split}.json")
    if not isinstance(entries, list):
        raise ValueError(f"{root / f'refer_{split}.json'} must hold a list of tasks")
    sizes = {
        int(info["image_id"]): (int(info["width"]), int(info["height"]))
        for info in load_json(root / "image_data_split.json")
    }

    tasks: list[Task] = []
    for index, entry in enumerate(entries):
        try:
            tasks.append(parse_task(entry, index, split))
        except BadSample as bad:
            yield bad
    by_id = {task.task_id: task for task in tasks}
    by_phrase: dict[str, list[str]] = defaultdict(list)
    for task in tasks:
        by_phrase[task.phrase.lower()].append(task.task_id)

    @lru_cache(maxsize=16)
    def image_of(image_id: int) -> tuple[bytes, tuple[int, int]]:
        return read_image(root / "images" / f"{image_id}.jpg", f"image {image_id}")

    def load(task: Task) -> tuple[bytes, bytes]:
        """The task's image bytes and mask PNG; raises ``BadSample`` naming the task."""
        if task.image_id not in sizes:
            raise BadSample(task.task_id, f"image {task.image_id} is not listed in image_data_split.json")
        width, height = sizes[task.image_id]
        check_bounds(task, width, height)
        try:
            data, actual = image_of(task.image_id)
        except BadSample as bad:
            raise BadSample(task.task_id, bad.reason) from None
        check_size(task.task_id, "the size in image_data_split.json", (width, height), actual)
        return data, encode_png(rasterize_polygons(task.polygons, width, height))

    for task in tasks:
        try:
            image, mask = load(task)
        except BadSample as bad:
            yield bad
            continue
        support: tuple[str, bytes, bytes] | None = None
        candidates = seeded_candidates(
            sample_rng(seed, task.task_id),
            by_phrase[task.phrase.lower()],
            allowed=lambda tid, me=task.task_id: tid != me,
            preferred=lambda tid, image_id=task.image_id: by_id[tid].image_id != image_id,
        )
        for other_id in candidates:
            try:
                support = (other_id, *load(by_id[other_id]))
                break
            except BadSample:
                continue  # the other task is reported on its own turn; try the next candidate
        yield make_row(
            task.task_id,
            image,
            mask,
            text=task.phrase,
            support_image=support[1] if support else None,
            support_mask=support[2] if support else None,
            meta={
                "task_id": task.task_id,
                "image_id": task.image_id,
                "n_instances": task.n_instances,
                "support_task_id": support[0] if support else None,
            },
        )
