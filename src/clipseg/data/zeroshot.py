"""PASCAL VOC zero-shot segmentation rows: one row per image with its class-id label map.

Layout (the VOC2012 devkit, as read by JoEm ``data_loader/dataset.py`` ``VOCSegmentation``, which
CLIPSeg's ``datasets/pascal_zeroshot.py`` wraps for the val split)::

    {src}/VOC2012/ImageSets/Segmentation/{split}.txt   one image id per line
    {src}/VOC2012/JPEGImages/{id}.jpg
    {src}/VOC2012/SegmentationClass/{id}.png           mode P (VOC palette): ids 0..20, 255 = ignore

``src`` may also be the VOC2012 folder itself or a VOCdevkit folder above it. The row's ``label`` is the
class-id map as a mode-L PNG, ``mask`` the union of all object pixels (any class id 1..20), ``meta``
lists the classes present; which classes count as unseen is the metric's business
(``clipseg.data.classes.held_out_classes("pascal-zeroshot-N")``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from clipseg.data.classes import VOC_CLASSES
from clipseg.data.sample_io import (
    check_size,
    encode_png,
    first_existing,
    make_row,
    read_image,
    read_png_array,
)
from clipseg.data.schema import BadSample

IGNORE = 255


def voc_root(src: Path) -> Path:
    """The VOC2012 folder: ``src`` itself, ``src/VOC2012`` or ``src/VOCdevkit/VOC2012``."""
    if (src / "JPEGImages").is_dir():
        return src
    return first_existing([src / "VOC2012", src / "VOCdevkit" / "VOC2012"])


def iter_rows(
    src: Path, split: str = "val", *, label_dir: str = "SegmentationClass"
) -> Iterator[dict[str, Any] | BadSample]:
    """Rows for the images of ``ImageSets/Segmentation/<split>.txt``.

    ``label_dir`` names the label folder; "SegmentationClassAug" reads the SBD-augmented labels instead.
    """
    root = voc_root(Path(src))
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} not found: is {src} a VOC2012 devkit folder?")
    valid = set(range(len(VOC_CLASSES) + 1)) | {IGNORE}
    for image_id in listing.read_text().split():
        try:
            data, size = read_image(root / "JPEGImages" / f"{image_id}.jpg", image_id)
            label_path = root / label_dir / f"{image_id}.png"
            label = read_png_array(label_path, image_id, "label")
            check_size(image_id, f"label {label_path}", label.shape[::-1], size)
            values = {int(v) for v in np.unique(label)}
            if not values <= valid:
                raise BadSample(
                    image_id, f"label {label_path} holds values {sorted(values - valid)} outside 0..20, 255"
                )
        except BadSample as bad:
            yield bad
            continue
        present = sorted(values - {0, IGNORE})
        yield make_row(
            image_id,
            data,
            encode_png((label != 0) & (label != IGNORE)),
            label=encode_png(label),
            meta={
                "image_id": image_id,
                "classes": present,
                "class_names": [VOC_CLASSES[c - 1] for c in present],
            },
        )
