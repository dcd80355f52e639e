"""The shifted shapes folder writer: any renderer of the shapes vocabulary writes the same format."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from clipseg.data.shapes.shift import ANNOTATION_HEADER, write_folder


def test_write_folder_writes_another_renderers_scenes(tmp_path):
    def render(rng: np.random.Generator) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        image = np.full((40, 40, 3), int(rng.integers(0, 100)), np.uint8)
        mask = np.zeros((40, 40), bool)
        mask[5:15, 5:15] = True
        image[mask] = (220, 30, 30)
        return image, {("red", "square"): mask}

    path = write_folder(tmp_path / "out", 3, seed=4, absent_prompts=True, render=render)
    with path.open() as handle:
        rows = list(csv.reader(handle))
    assert (
        tuple(rows[0]) == ANNOTATION_HEADER and len(rows) == 1 + 3 * 2
    )  # each image: its object + one absent
    for image_name, mask_name, prompt in rows[1:]:
        image = np.asarray(Image.open(tmp_path / "out" / image_name))
        mask = np.asarray(Image.open(tmp_path / "out" / mask_name)) > 127
        assert image.shape == (40, 40, 3)
        if prompt == "red square":
            assert mask.sum() == 100 and (image[mask] == (220, 30, 30)).all()
        else:
            assert not mask.any() and prompt != "red square"
