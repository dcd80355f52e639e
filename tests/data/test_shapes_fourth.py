"""``bench/shapes_fourth.py``, the evaluation-only fourth shapes renderer: deterministic, truthful masks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow.parquet as pq
import pytest

from clipseg.cli.prepare import prepare_main
from clipseg.data.shapes.scenes import COLORS, SHAPES

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def fourth() -> ModuleType:
    """The bench script as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("shapes_fourth", BENCH / "shapes_fourth.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _colour_word(fourth: ModuleType, rgb: np.ndarray) -> str:
    """The colour word whose named tones hold the nearest one to ``rgb``."""
    return min(
        fourth.PALETTES, key=lambda word: min(np.abs(rgb - np.array(t)).sum() for t in fourth.PALETTES[word])
    )


def _interior(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """The pixels of ``mask [H, W]`` whose whole ``(2 margin + 1)``-square neighbourhood is in it."""
    padded = np.pad(mask, margin)
    h, w = mask.shape
    shifts = [
        padded[dy : dy + h, dx : dx + w] for dy in range(2 * margin + 1) for dx in range(2 * margin + 1)
    ]
    return np.logical_and.reduce(shifts)


def test_scenes_are_deterministic_by_seed(fourth):
    def scenes(seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [fourth.render_scene(rng) for _ in range(10)]  # every background, most styles

    first, again, other = scenes(7), scenes(7), scenes(8)
    for (image, masks), (image_again, masks_again) in zip(first, again):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert np.array_equal(image, image_again) and masks.keys() == masks_again.keys()
        assert all(np.array_equal(masks[k], masks_again[k]) for k in masks)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for (a, _), (b, _) in zip(first, other))


def test_masks_are_the_drawn_objects_named_in_the_vocabulary(fourth):
    assert set(fourth.PALETTES) == set(COLORS)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        image, masks = fourth.render_scene(rng)
        assert 1 <= len(masks) <= fourth.MAX_OBJECTS
        assert not np.any(np.sum(list(masks.values()), axis=0) > 1)  # objects never overlap
        for (colour, shape), mask in masks.items():
            assert colour in COLORS and shape in SHAPES and mask.shape == image.shape[:2]
            # The object's inside (past the outline; the median, past the gradient) is of the named colour.
            inside = image[_interior(mask)].astype(float)
            assert len(inside) and _colour_word(fourth, np.median(inside, axis=0)) == colour
            seen.add(shape)
    assert seen == set(SHAPES)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_cover_the_area_of_their_equal_area_radius(fourth, shape):
    y, x = np.mgrid[0:200, 0:200].astype(np.float32) + 0.5
    for angle in (0.0, 0.7, 2.0):
        inside = fourth.shape_distance(shape, 100.0, 100.0, 30.0, angle, x, y) <= 0
        assert inside.sum() == pytest.approx(np.pi * 30**2, rel=0.02)
        assert inside[100, 100] and not inside[0, 0]


def test_write_folder_is_read_by_prepare_folder(fourth, tmp_path):
    annotations = fourth.write_folder(tmp_path / "raw", 6, seed=5, absent_prompts=True)
    assert prepare_main(["folder", "--src", str(annotations.parent), "--out", str(tmp_path / "out")]) == 0
    rows = [
        r for path in (tmp_path / "out").rglob("shard-*.parquet") for r in pq.read_table(path).to_pylist()
    ]
    prompts = {r["text"] for r in rows}
    assert len(rows) == len(annotations.read_text().splitlines()) - 1
    assert all(p.split() in ([c, s] for c in COLORS for s in SHAPES) for p in prompts)
