"""``bench/shapes_fifth.py``, the blind fifth shapes renderer: deterministic, masks a person would agree with."""

from __future__ import annotations

import colorsys
import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from clipseg.data.folder import folder_row, folder_tasks
from clipseg.data.user_data import read_binary_mask

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "shapes_fifth.py"
# Hue (degrees) of each colour word as a person would place it; independent of the renderer's shades.
HUES = {"red": 0, "orange": 30, "yellow": 52, "green": 130, "blue": 222, "purple": 280}
SCENES = 8


@pytest.fixture(scope="module")
def fifth() -> ModuleType:
    """The bench script as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("shapes_fifth", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def folder(fifth: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fifth.write_folder(tmp_path_factory.mktemp("fifth"), SCENES, seed=7, absent_prompts=True)


def _rows(folder: Path) -> list[dict[str, str]]:
    return _rows_of(folder / "annotations.csv")


def _rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _hue_word(pixels: np.ndarray) -> str:
    """The colour word whose hue is nearest the mean colour of ``pixels`` (``N x 3`` uint8)."""
    r, g, b = pixels.reshape(-1, 3).mean(axis=0) / 255
    hue = colorsys.rgb_to_hsv(r, g, b)[0] * 360
    return min(HUES, key=lambda word: min(abs(hue - HUES[word]), 360 - abs(hue - HUES[word])))


def _shape_word(part: np.ndarray) -> str:
    """circle / square / triangle from how much of its circumscribed circle a blob fills."""
    ys, xs = np.nonzero(part)
    reach = np.hypot(ys - ys.mean(), xs - xs.mean()).max() + 0.5
    fill = part.sum() / (np.pi * reach**2)
    return "circle" if fill > 0.8 else "square" if fill > 0.52 else "triangle"


def test_same_seed_same_files_other_seed_other_scenes(
    fifth: ModuleType, folder: Path, tmp_path: Path
) -> None:
    again = fifth.write_folder(tmp_path / "again", SCENES, seed=7, absent_prompts=True)
    assert _rows(again) == _rows(folder)
    for row in _rows(folder):
        for column in ("image", "mask"):
            assert (again / row[column]).read_bytes() == (folder / row[column]).read_bytes()
    other = fifth.write_folder(tmp_path / "other", SCENES, seed=8, absent_prompts=True)
    assert _rows(other) != _rows(folder)


def test_each_mask_is_objects_of_its_colour_and_shape(folder: Path) -> None:
    checked = 0
    for row in _rows(folder):
        mask = read_binary_mask(folder / row["mask"], row["mask"])
        if not mask.any():
            continue
        image = np.asarray(Image.open(folder / row["image"]).convert("RGB"))
        colour, shape = row["prompt"].split()
        parts, count = ndimage.label(mask)
        for label in range(1, count + 1):
            part = parts == label
            inner = ndimage.binary_erosion(part, iterations=2)  # away from the blended edge
            assert _hue_word(image[inner if inner.any() else part]) == colour, row
            assert _shape_word(part) == shape, row
            checked += 1
    assert checked >= SCENES


def test_one_absent_prompt_per_image_with_an_empty_mask(fifth: ModuleType, folder: Path) -> None:
    by_image: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder):
        by_image.setdefault(row["image"], []).append(row)
    assert len(by_image) == SCENES
    vocabulary = {f"{c} {s}" for c in HUES for s in ("circle", "square", "triangle")}
    for index, rows in enumerate(by_image.values()):
        empty = [r for r in rows if not read_binary_mask(folder / r["mask"], r["mask"]).any()]
        assert len(empty) == 1
        in_scene = {f"{piece.colour} {piece.shape}" for piece in fifth.render(7, index)[1]}
        assert {r["prompt"] for r in rows} - {empty[0]["prompt"]} == in_scene
        assert empty[0]["prompt"] in vocabulary - in_scene
    without = fifth.write_folder(folder.parent / "without", 2, seed=7, absent_prompts=False)
    assert all(read_binary_mask(without / r["mask"], r["mask"]).any() for r in _rows(without))


def test_every_object_has_a_mask_and_canvases_vary(fifth: ModuleType) -> None:
    sizes, counts = set(), set()
    for index in range(SCENES):
        image, pieces, _ = fifth.render(7, index)
        blobs = sum(ndimage.label(m)[1] for m in fifth.prompt_masks(pieces).values())
        assert blobs == len(pieces) >= 1  # objects never touch: one blob each
        assert all(128 <= side <= 400 for side in image.shape[:2])
        sizes.add(image.shape[:2])
        counts.add(len(pieces))
    assert len(sizes) > 1 and len(counts) > 1


def test_the_folder_reader_reads_every_row(folder: Path) -> None:
    tasks, refused = folder_tasks(folder, "train", val_fraction=0.0)
    assert refused == []
    assert len(tasks) == len(_rows(folder))
    for task in tasks:
        folder_row(task)  # raises BadSample on an unreadable file or a mask of another size


def test_quality_by_shape_splits_the_rows_by_shape(fifth: ModuleType, folder: Path) -> None:
    scores = fifth.quality_by_shape("shapes-tiny", folder)
    parts = [scores[shape] for shape in ("circle", "square", "triangle")]
    whole = scores["all"]
    for count, mean in (("n_text", "text_miou"), ("n_absent", "absent_marked_fraction")):
        assert sum(p[count] for p in parts) == whole[count]
        weighted = sum(p[mean] * p[count] for p in parts if p[count]) / whole[count]
        assert weighted == pytest.approx(whole[mean])
    for shape in ("circle", "square", "triangle"):
        assert all(row["prompt"].endswith(shape) for row in _rows_of(folder / f"annotations-{shape}.csv"))
