"""PhraseCut reader against a fixture in the VGPhraseCut_v0 format: masks, supports, bad tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixture_data.prepared import png_array, prepare_and_stream
from fixture_data.raw_formats import PHRASECUT_BAD, write_phrasecut

from clipseg.data.phrasecut import iter_rows, rasterize_polygons
from clipseg.data.schema import SHARD_FEATURES, BadSample


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_phrasecut(tmp_path_factory.mktemp("phrasecut"), split="val", bad=PHRASECUT_BAD)


@pytest.fixture(scope="module")
def rows(dataset):
    items = list(iter_rows(dataset.root.parent, "val"))  # the folder above VGPhraseCut_v0 works too
    good = {r["sample_id"]: r for r in items if not isinstance(r, BadSample)}
    bad = {r.sample_id: r.reason for r in items if isinstance(r, BadSample)}
    return good, bad


def test_one_complete_row_per_good_task(dataset, rows):
    good, _ = rows
    assert list(good) == list(dataset.masks)  # file order
    for task_id, row in good.items():
        assert set(row) == set(SHARD_FEATURES)
        assert row["text"] == dataset.phrases[task_id]
        image_id = dataset.image_ids[task_id]
        assert row["image"] == (dataset.root / "images" / f"{image_id}.jpg").read_bytes()  # bytes as on disk
        assert json.loads(row["meta"])["image_id"] == image_id


def test_masks_match_the_polygons_pixel_for_pixel(dataset, rows):
    good, _ = rows
    for task_id, row in good.items():
        mask = png_array(row["mask"])
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask > 0, dataset.masks[task_id], err_msg=task_id)


def test_rasterization_follows_phrasecut_rule():
    # vertices truncated with int(), outline included, one-point polygons skipped, union of polygons
    mask = rasterize_polygons([[[1.9, 1.2], [4.99, 1], [4, 3.7], [1, 3]], [[7, 7]]], width=8, height=8)
    expected = np.zeros((8, 8), bool)
    expected[1:4, 1:5] = True
    np.testing.assert_array_equal(mask, expected)


def test_supports_share_the_phrase_and_prefer_another_image(dataset, rows):
    good, _ = rows
    for task_id, row in good.items():
        support_id = json.loads(row["meta"])["support_task_id"]
        if dataset.phrases[task_id] in ("two dogs", "tree", "sky"):  # unique phrases
            assert support_id is None and row["support_image"] is None and row["support_mask"] is None
            continue
        assert dataset.phrases[support_id].lower() == dataset.phrases[task_id].lower()
        assert support_id != task_id and support_id in dataset.masks  # never the broken 5__1
        np.testing.assert_array_equal(png_array(row["support_mask"]) > 0, dataset.masks[support_id])
        assert row["support_image"] == good[support_id]["image"]
        same_image = dataset.image_ids[support_id] == dataset.image_ids[task_id]
        assert same_image == (dataset.phrases[task_id] == "window")  # "window" only occurs on image 1


def test_support_choice_is_seeded(dataset):
    def supports(seed):
        return {
            r["sample_id"]: json.loads(r["meta"])["support_task_id"]
            for r in iter_rows(dataset.root, "val", seed=seed)
            if not isinstance(r, BadSample)
        }

    assert supports(3) == supports(3)
    assert len({supports(seed)["1__1"] for seed in range(8)}) == 2  # 2__1 or 3__1


def test_bad_tasks_are_reported_by_id_with_the_reason(dataset, rows):
    _, bad = rows
    assert set(bad) == set(dataset.bad)
    expected = {
        "missing_image": "4.jpg is missing",
        "corrupt_image": "5.jpg is not in a known image format",
        "malformed_entry": "Polygons",
        "out_of_bounds": "(130, 10) lies outside the 96x64 image",
        "size_mismatch": "image_data_split.json is 48x30 but the image is 40x30",
    }
    for task_id, kind in dataset.bad.items():
        assert expected[kind] in bad[task_id], (kind, bad[task_id])


def test_unknown_split_and_missing_files(dataset, tmp_path):
    with pytest.raises(ValueError, match="split"):
        next(iter_rows(dataset.root, "dev"))
    with pytest.raises(FileNotFoundError, match=r"refer_val\.json"):
        next(iter_rows(tmp_path, "val"))


def test_prepare_and_stream_end_to_end(dataset, tmp_path):
    report, skipped, samples = prepare_and_stream("phrasecut", dataset.root, tmp_path / "shards", "val")
    assert report["rows"] == len(dataset.masks) and set(skipped) == set(dataset.bad)
    assert set(samples) == set(dataset.masks)
    for task_id, sample in samples.items():
        np.testing.assert_array_equal(sample["mask"], dataset.masks[task_id].astype(np.float32))
        assert sample["image"].shape[:2] == dataset.masks[task_id].shape
