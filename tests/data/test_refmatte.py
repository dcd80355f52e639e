"""RefMatte / RefMatte-RW100 reader against fixtures: alpha mattes, keyword / expression prompts, bad data."""

from __future__ import annotations

import numpy as np
import pytest
from fixture_data.prepared import png_array, prepare_and_stream
from fixture_data.raw_formats import REFMATTE_BAD, write_refmatte

from clipseg.data.refmatte import iter_rows
from clipseg.data.schema import BadSample


@pytest.fixture(scope="module", params=["test", "rw100"])
def dataset(request, tmp_path_factory):
    return write_refmatte(tmp_path_factory.mktemp(request.param), split=request.param, bad=REFMATTE_BAD)


def good_rows(dataset, setting):
    rows = list(iter_rows(dataset.root, dataset.split, setting=setting))
    bad = {r.sample_id: r.reason for r in rows if isinstance(r, BadSample)}
    assert set(bad) == set(dataset.bad)
    return [r for r in rows if not isinstance(r, BadSample)], bad


def test_keyword_setting(dataset):
    rows, _ = good_rows(dataset, "keyword")
    assert [r["sample_id"] for r in rows] == sorted(dataset.alphas)
    for row in rows:
        assert row["text"] == dataset.entries[row["sample_id"]]["keyword"]
        alpha = png_array(row["mask"])
        np.testing.assert_array_equal(alpha, dataset.alphas[row["sample_id"]])  # soft values kept
        assert 0 < alpha.mean() < 255 and len(np.unique(alpha)) > 2


def test_expression_setting(dataset):
    rows, _ = good_rows(dataset, "expression")
    texts = {r["sample_id"]: r["text"] for r in rows}
    if dataset.eval_index is None:  # every expression of every entity
        expected = {
            f"{alpha}#{i}": text
            for alpha in dataset.alphas
            for i, text in enumerate(dataset.entries[alpha]["expressions"])
        }
    else:  # RW100: the one expression eval_index_expression.json picks per image
        expected = {
            alpha: dataset.entries[alpha]["expressions"][
                dataset.eval_index[dataset.entries[alpha]["image_name"]]
            ]
            for alpha in dataset.alphas
        }
    assert texts == expected
    for row in rows:
        np.testing.assert_array_equal(png_array(row["mask"]), dataset.alphas[row["sample_id"].split("#")[0]])


def test_bad_entities_are_named(dataset):
    _, bad = good_rows(dataset, "expression")
    expected = {"missing_image": "is missing", "size_mismatch": "30x30 but the image is 40x40",
                "malformed_entry": "'expressions'"}  # fmt: skip
    for alpha, kind in dataset.bad.items():
        assert expected[kind] in bad[alpha]


def test_bad_setting(dataset):
    with pytest.raises(ValueError, match="setting"):
        next(iter_rows(dataset.root, dataset.split, setting="caption"))


def test_prepare_and_stream_end_to_end(dataset, tmp_path):
    report, skipped, samples = prepare_and_stream(
        "refmatte", dataset.root, tmp_path, dataset.split, setting="keyword"
    )
    assert report["rows"] == len(dataset.alphas) and set(skipped) == set(dataset.bad)
    for alpha, sample in samples.items():
        np.testing.assert_allclose(sample["mask"], dataset.alphas[alpha] / 255.0, atol=1e-6)
