"""PASCAL-5i / COCO-20i readers against fixtures in HSNet's layout: episodes, masks, class ids, bad data."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from fixture_data.prepared import png_array, prepare_and_stream
from fixture_data.raw_formats import FEWSHOT_BAD, write_coco20i, write_pascal5i

from clipseg.data.classes import COCO_CLASSES, held_out_classes
from clipseg.data.fewshot import detect_benchmark, iter_rows
from clipseg.data.schema import BadSample


@pytest.fixture(scope="module")
def pascal(tmp_path_factory):
    return write_pascal5i(tmp_path_factory.mktemp("pascal5i"), bad=FEWSHOT_BAD)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco20i(tmp_path_factory.mktemp("coco20i"), bad=FEWSHOT_BAD)


def split_rows(items):
    items = list(items)
    good = [r for r in items if not isinstance(r, BadSample)]
    return good, [r for r in items if isinstance(r, BadSample)]


def check_pair(truth, row):
    """Query and support masks are exactly the class pixels of their label maps; the two images differ."""
    meta = json.loads(row["meta"])
    assert meta["query"] != meta["support"]
    for name, mask in ((meta["query"], row["mask"]), (meta["support"], row["support_mask"])):
        np.testing.assert_array_equal(
            png_array(mask) > 0, truth.labels[name] == row["class_id"], err_msg=name
        )


def test_pascal_test_episodes(pascal):
    good, bad = split_rows(iter_rows(pascal.root, "test", n_episodes=24, seed=1))
    assert len(good) + len(bad) == 24
    val_pairs = pascal.pairs[("val", 0)]
    for row in good:
        assert row["class_id"] in (1, 2) and row["text"] == ("aeroplane", "bicycle")[row["class_id"] - 1]
        check_pair(pascal, row)
        index = int(row["sample_id"].rsplit("episode", 1)[1])
        assert json.loads(row["meta"])["query"] == val_pairs[index % len(val_pairs)][0]  # HSNet's walk
        assert (
            row["image"]
            == (
                pascal.root / "VOC2012" / "JPEGImages" / f"{json.loads(row['meta'])['query']}.jpg"
            ).read_bytes()
        )
    reasons = {b.reason.split(" ")[0] for b in bad}
    assert {b.sample_id.startswith("pascal5i-fold0-episode") for b in bad} == {True}
    assert reasons == {"image", "label", "class"}  # missing image, unreadable label, class absent


def test_episodes_are_deterministic_per_seed(pascal):
    def episodes(seed):
        return [(r["sample_id"], r["meta"]) for r in iter_rows(pascal.root, "val", n_episodes=16, seed=seed)
                if not isinstance(r, BadSample)]  # fmt: skip

    assert episodes(0) == episodes(0)
    assert episodes(0) != episodes(1)  # same queries (HSNet's walk), other supports


def test_pascal_default_is_1000_episodes(tmp_path):
    truth = write_pascal5i(tmp_path, classes=(6, 7), per_class=2)
    rows = list(iter_rows(truth.root, "test", fold=1))
    assert len(rows) == 1000 and not any(isinstance(r, BadSample) for r in rows)
    assert {r["class_id"] for r in rows} == {6, 7}


def test_pascal_training_rows_use_the_other_folds(pascal):
    good, bad = split_rows(iter_rows(pascal.root, "train", fold=0))
    assert not bad
    expected = [p for f in (1, 2, 3) for p in pascal.pairs[("trn", f)]]
    assert [(json.loads(r["meta"])["query"], r["class_id"]) for r in good] == expected
    assert good[0]["sample_id"] == f"{expected[0][0]}__{expected[0][1]:02d}"
    for row in good:
        check_pair(pascal, row)


def test_coco_test_episodes(coco):
    good, bad = split_rows(iter_rows(coco.root, "test", n_episodes=30, benchmark="coco20i"))
    held_out = {COCO_CLASSES.index(c) + 1 for c in held_out_classes("coco20i", 0)}
    assert {r["class_id"] for r in good} == {1, 5}  # both fixture classes of fold 0, 1-based
    assert {r["class_id"] for r in good} <= held_out
    for row in good:
        assert row["text"] == COCO_CLASSES[row["class_id"] - 1]
        assert json.loads(row["meta"])["query"].startswith("val2014/COCO_val2014_")
        check_pair(coco, row)
    assert len(good) + len(bad) == 30 and {b.sample_id.startswith("coco20i-fold0-episode") for b in bad} <= {
        True
    }


def test_coco_training_rows(coco):
    good, bad = split_rows(iter_rows(coco.root, "train", fold=0))
    assert not bad and {r["class_id"] for r in good} == {2, 3}
    for row in good:
        check_pair(coco, row)


def test_detect_benchmark_and_errors(pascal, coco, tmp_path):
    assert detect_benchmark(pascal.root) == "pascal5i" and detect_benchmark(coco.root) == "coco20i"
    with pytest.raises(ValueError, match="VOC2012"):
        detect_benchmark(tmp_path)
    with pytest.raises(ValueError, match="fold"):
        next(iter_rows(pascal.root, "test", fold=4))
    with pytest.raises(FileNotFoundError, match="splits"):
        next(iter_rows(pascal.root, "test", splits_dir=tmp_path))


def test_split_pickles_cannot_run_code(coco, tmp_path):
    (tmp_path / "coco" / "val").mkdir(parents=True)
    (tmp_path / "coco" / "val" / "fold0.pkl").write_bytes(pickle.dumps({0: [print]}))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.print"):
        next(iter_rows(coco.root, "test", splits_dir=tmp_path))


@pytest.mark.parametrize("dataset", ["pascal5i", "coco20i"])
def test_prepare_and_stream_end_to_end(dataset, pascal, coco, tmp_path):
    truth = pascal if dataset == "pascal5i" else coco
    report, skipped, samples = prepare_and_stream(dataset, truth.root, tmp_path, "test", n_episodes=12)
    assert report["rows"] + report["skipped"] == 12 and len(samples) == report["rows"]
    assert all(sample_id.startswith(f"{dataset}-fold0-episode") for sample_id in skipped)
    for sample in samples.values():
        query = sample["meta"]["query"]
        np.testing.assert_array_equal(
            sample["mask"], (truth.labels[query] == sample["class_id"]).astype(np.float32)
        )
