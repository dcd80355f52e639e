"""``clipseg prepare coco --src instances.json --images DIR --out OUT``: a COCO instances file.

What CVAT, Label Studio and Roboflow export as "COCO". Each (image, category) with at least one
annotation becomes one row: the prompt is the category name, the mask the union of every instance of
that category in the image (polygons and RLE, decoded with ``pycocotools``). Crowd annotations
(``iscrowd: 1``, an RLE over a group of objects) are part of the mask too: their pixels are the
category's, and a prompt such as "person" should mark them.

Options (``--option KEY=VALUE``):

- ``template``: the prompt made from the name, e.g. ``"a {} on the road"`` (default ``"{}"``);
- ``names``: a map from category name to prompt, inline JSON (``{"tv": "television"}``) or a JSON
  file; categories it does not name keep their name;
- ``val_fraction`` / ``seed``: the seeded split by image (default 10 % of the images are ``val``).

Skipped (listed in ``skipped.json``): annotations whose image id or category id is not in the file,
annotations without a usable segmentation, images that are missing, unreadable or of another size
than the file says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from clipseg.core.files import sha256_of
from clipseg.data.sample_io import check_size, encode_png, load_json, make_row, read_image
from clipseg.data.schema import BadSample
from clipseg.data.user_data import RowTasks, check_split, validation_images


@dataclass(frozen=True)
class CocoTask:
    """One row to write: an image, its size from the file, a prompt and the segmentations to merge."""

    sample_id: str
    path: Path
    width: int
    height: int
    prompt: str
    segmentations: tuple[Any, ...]
    image_prompts: tuple[str, ...]


def prompt_names(categories: Sequence[dict[str, Any]], template: str, names: Any) -> dict[int, str]:
    """Category id → prompt, from ``template`` (with one ``{}``) and the ``names`` map (dict or JSON file)."""
    if "{}" not in template:
        raise ValueError(f"template {template!r} needs a {{}} where the category name goes")
    if isinstance(names, str):
        names = load_json(Path(names))
    if not isinstance(names, dict):
        raise ValueError("names must map category names to prompts (a JSON object or a JSON file of one)")
    return {int(c["id"]): template.format(names.get(c["name"], c["name"])).strip() for c in categories}


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """``H x W`` bool mask of one COCO segmentation: polygons, uncompressed or compressed RLE."""
    if isinstance(segmentation, list):  # polygons [[x1, y1, x2, y2, ...], ...]
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        rle = dict(segmentation)
    else:
        raise ValueError(f"unknown segmentation type {type(segmentation).__name__}")
    return mask_utils.decode(rle).astype(bool)


def coco_tasks(
    src: Path,
    split: str,
    *,
    images: str | Path,
    template: str = "{}",
    names: Any = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[list[CocoTask], list[BadSample]]:
    """The tasks of ``split`` and the annotations refused on sight (those are listed under train only)."""
    check_split(split)
    data = load_json(src)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise ValueError(f"{src} is not a COCO instances file (needs images, annotations and categories)")
    prompts = prompt_names(data["categories"], template, names or {})
    known = {int(img["id"]): img for img in data["images"]}
    bad: list[BadSample] = []
    groups: dict[tuple[int, int], list[Any]] = {}
    for ann in data["annotations"]:
        ann_id = f"annotation {ann.get('id', '?')}"
        image_id, category_id = int(ann.get("image_id", -1)), int(ann.get("category_id", -1))
        if image_id not in known:
            bad.append(BadSample(ann_id, f"image id {image_id} is not among the file's images"))
        elif category_id not in prompts:
            bad.append(BadSample(ann_id, f"category id {category_id} is not among the file's categories"))
        elif not ann.get("segmentation"):
            bad.append(BadSample(ann_id, "has no segmentation (a box alone is not a mask)"))
        elif not prompts[category_id]:
            bad.append(BadSample(ann_id, f"category id {category_id} gives an empty prompt"))
        else:
            groups.setdefault((image_id, category_id), []).append(ann["segmentation"])
    file_names = {image_id: str(known[image_id]["file_name"]) for image_id, _ in groups}
    val = validation_images(list(file_names.values()), val_fraction, seed)
    image_prompts: dict[int, list[str]] = {}
    for image_id, category_id in groups:
        image_prompts.setdefault(image_id, []).append(prompts[category_id])
    tasks = []
    for (image_id, category_id), segmentations in groups.items():
        name = file_names[image_id]
        if ("val" if name in val else "train") != split:
            continue
        tasks.append(
            CocoTask(
                sample_id=f"{name}:{prompts[category_id]}",
                path=Path(images) / name,
                width=int(known[image_id]["width"]),
                height=int(known[image_id]["height"]),
                prompt=prompts[category_id],
                segmentations=tuple(segmentations),
                image_prompts=tuple(image_prompts[image_id]),
            )
        )
    return tasks, bad if split == "train" else []


def coco_row(task: CocoTask) -> dict[str, Any]:
    """The shard row of one task (runs in a worker process); ``BadSample`` names what is wrong."""
    image, size = read_image(task.path, task.sample_id)
    check_size(task.sample_id, "the annotation file's size", (task.width, task.height), size)
    mask = np.zeros((task.height, task.width), dtype=bool)
    for segmentation in task.segmentations:
        try:
            mask |= decode_segmentation(segmentation, task.height, task.width)
        except (ValueError, TypeError, IndexError) as err:
            raise BadSample(task.sample_id, f"a segmentation cannot be decoded ({err})") from None
    return make_row(
        task.sample_id,
        image,
        encode_png(mask),
        text=task.prompt,
        meta={"image_id": task.path.name, "prompts": list(task.image_prompts)},
    )


def source_digest(src: Path, **options: Any) -> str:
    """sha256 of the instances file: ``prepare`` converts again when it changes."""
    return sha256_of(src)


def iter_rows(
    src: Path,
    split: str = "train",
    *,
    images: str | Path | None = None,
    template: str = "{}",
    names: Any = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    workers: int = 1,
) -> RowTasks[CocoTask]:
    """Shard rows (``SHARD_FEATURES``) of ``split`` ("train" or "val") of the instances file ``src``.

    The file is read and checked at once (a file that is not COCO raises ``ValueError`` before
    anything is written); images are read as the rows are iterated, by ``workers`` processes.
    """
    if images is None:
        raise ValueError("preparing coco needs --images, the folder the file's file_name entries are in")
    if not Path(images).is_dir():
        raise FileNotFoundError(f"images folder {images} does not exist")
    tasks, refused = coco_tasks(
        Path(src), split, images=images, template=template, names=names, val_fraction=val_fraction, seed=seed
    )
    return RowTasks(tasks, coco_row, workers=workers, refused=refused)
