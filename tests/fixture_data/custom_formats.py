"""Users' own data, written by code: an annotated folder (CSV / JSONL) and a COCO instances file.

Scenes come from ``clipseg.data.shapes.shift`` (colour + shape prompts that the shipped shapes-tiny
tokenizer knows), drawn small so that the tests stay fast.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from clipseg.data.shapes.shift import ShiftConfig, render_scene, write_folder

SMALL = ShiftConfig(size=48, radius=(0.12, 0.2), min_objects=2, max_objects=3)


def write_small_folder(root: Path, n: int = 10, seed: int = 0) -> Path:
    """``root/annotations.csv`` with ``n`` small shifted scenes; returns ``root``."""
    write_folder(root, n, seed=seed, config=SMALL)
    return root


def read_csv_rows(root: Path) -> list[dict[str, str]]:
    with (root / "annotations.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv_rows(root: Path, rows: list[dict[str, str]], columns=("image", "mask", "prompt")) -> None:
    with (root / "annotations.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_small_coco(root: Path, n: int = 8, seed: int = 0) -> Path:
    """``root/images/*.png`` and ``root/instances.json`` (one category per colour + shape); returns the file.

    Each object mask becomes an annotation, alternately as compressed RLE and as uncompressed RLE;
    the first scene's first object is marked as a crowd.
    """
    (root / "images").mkdir(parents=True, exist_ok=True)
    categories: dict[str, int] = {}
    images, annotations = [], []
    for index in range(n):
        image, masks = render_scene(np.random.default_rng([seed, index]), SMALL)
        name = f"{index:03d}.png"
        Image.fromarray(image).save(root / "images" / name)
        images.append({"id": index + 1, "file_name": name, "width": SMALL.size, "height": SMALL.size})
        for k, ((color, shape), mask) in enumerate(sorted(masks.items())):
            category = categories.setdefault(f"{color} {shape}", len(categories) + 1)
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            if len(annotations) % 2:
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
            else:  # uncompressed: run lengths as a list, column-major like COCO
                flat = mask.astype(np.uint8).flatten(order="F")
                changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
                counts = np.diff(np.concatenate([[0], changes])).tolist()
                segmentation = {"size": list(mask.shape), "counts": counts}
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": category,
                    "segmentation": segmentation,
                    "iscrowd": int(index == 0 and k == 0),
                    "area": int(mask.sum()),
                    "bbox": [0, 0, 1, 1],
                }
            )
    path = root / "instances.json"
    cats = [{"id": i, "name": name, "supercategory": "shape"} for name, i in categories.items()]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return path
