"""PASCAL zero-shot reader against a VOC2012 devkit fixture: label maps pixel for pixel, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixture_data.prepared import png_array, prepare_and_stream
from fixture_data.raw_formats import ZEROSHOT_BAD, write_pascal_zeroshot

from clipseg.data.schema import NO_CLASS, BadSample
from clipseg.data.zeroshot import iter_rows


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_pascal_zeroshot(tmp_path_factory.mktemp("voc"), bad=ZEROSHOT_BAD)


def test_rows_carry_label_maps_pixel_for_pixel(dataset):
    rows = [r for r in iter_rows(dataset.root.parent, "val") if not isinstance(r, BadSample)]
    assert [r["sample_id"] for r in rows] == list(dataset.labels)
    for row in rows:
        label = dataset.labels[row["sample_id"]]
        np.testing.assert_array_equal(png_array(row["label"]), label)  # palette indices, 255 kept
        np.testing.assert_array_equal(png_array(row["mask"]) > 0, (label > 0) & (label < 255))
        meta = json.loads(row["meta"])
        assert meta["classes"] == sorted(set(np.unique(label).tolist()) - {0, 255})
        assert row["class_id"] == NO_CLASS and row["text"] == "" and row["support_image"] is None
    meta = json.loads(rows[0]["meta"])
    assert meta["class_names"] == ["cow", "person"]


def test_bad_images_and_labels_are_named(dataset):
    bad = {r.sample_id: r.reason for r in iter_rows(dataset.root, "val") if isinstance(r, BadSample)}
    assert set(bad) == set(dataset.bad)
    expected = {"missing_image": "is missing", "rgb_label": "mode RGB", "invalid_class": "[40]",
                "size_mismatch": "48x40 but the image is 64x48"}  # fmt: skip
    for image_id, kind in dataset.bad.items():
        assert expected[kind] in bad[image_id]


def test_missing_listing(tmp_path):
    (tmp_path / "VOC2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"Segmentation/val\.txt"):
        next(iter_rows(tmp_path, "val"))


def test_prepare_and_stream_end_to_end(dataset, tmp_path):
    report, skipped, samples = prepare_and_stream("pascal-zeroshot", dataset.root, tmp_path, "val")
    assert report["rows"] == len(dataset.labels) and set(skipped) == set(dataset.bad)
    for image_id, sample in samples.items():
        np.testing.assert_array_equal(sample["label"], dataset.labels[image_id].astype(np.int64))
        assert sample["meta"]["classes"]
