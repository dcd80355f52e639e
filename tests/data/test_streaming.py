"""Streaming shards: pixel-exact round trip, the prompt policy, corrupt rows, shuffling, 2-rank coverage."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixture_data.shards import referring_rows, write_shapes_shards

from clipseg.core.prompts import visual_prompt
from clipseg.data.shapes.scenes import ShapesConfig, make_sample
from clipseg.data.streaming import CorruptRow, PromptPolicy, ShardStream, shard_files

SIZE = 48


@pytest.fixture(scope="module")
def shapes_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes-shards")
    # 4 val shards: split across 2 ranks shard by shard; 3 test shards: every other row per rank.
    write_shapes_shards(out, splits=("val",), length=11, size=SIZE, shard_size=3)
    write_shapes_shards(out, splits=("test",), length=13, size=SIZE, shard_size=5)
    return out


def test_shapes_shards_stream_back_pixel_for_pixel(shapes_shards):
    stream = ShardStream(source=str(shapes_shards), split="val", policy=PromptPolicy(visual=True))
    got = list(stream)
    assert [s["sample_id"] for s in got] == [f"shapes-val-0-{i}" for i in range(11)]
    for sample in got:
        want = make_sample(
            0, int(sample["sample_id"].rsplit("-", 1)[1]), split="val", config=ShapesConfig(size=SIZE)
        )
        assert sample["text"] == want["text"]
        assert np.array_equal(sample["image"], want["image"]) and np.array_equal(sample["mask"], want["mask"])
        assert (sample["support"] is None) == (want["support"] is None)
        if want["support"] is not None:  # the policy hands over the support pair; the transform prompts
            assert np.array_equal(
                visual_prompt(sample["support"], sample["support_mask"], SIZE), want["support"]
            )


def test_shard_patterns_accept_urls_and_split_placeholders():
    assert shard_files("s3://bucket/pc/", "val") == "s3://bucket/pc/val/*.parquet"
    assert (
        shard_files("hf://datasets/me/pc/{split}-*.parquet", "test") == "hf://datasets/me/pc/test-*.parquet"
    )


def test_memory_fsspec_url_streams_like_a_folder(shapes_shards):
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in (shapes_shards / "val").glob("*.parquet"):
        fs.pipe(f"/shards/val/{path.name}", path.read_bytes())
    ids = [s["sample_id"] for s in ShardStream(source="memory://shards", split="val")]
    assert sorted(ids) == sorted(f"shapes-val-0-{i}" for i in range(11))


def test_training_shuffle_is_a_permutation_that_changes_per_epoch(shapes_shards):
    stream = ShardStream(
        source=str(shapes_shards), split="test", shuffle_buffer=5, buffer_input_shards=1, seed=1, train=True
    )
    epoch0 = [s["sample_id"] for s in stream]
    epoch1 = [s["sample_id"] for s in stream]
    assert sorted(epoch0) == sorted(epoch1) == sorted(f"shapes-test-0-{i}" for i in range(13))
    assert epoch0 != epoch1 and epoch0 != sorted(epoch0, key=lambda i: int(i.rsplit("-", 1)[1]))


def test_a_one_shard_split_is_shuffled_without_the_end_of_pass_sleep(tmp_path, monkeypatch):
    """Issue 36 defect 5: datasets' shard interleaving sleeps 5 s at the end of every pass of parquet
    shards; a small folder (one shard, an epoch of a few batches) waited that long each epoch."""
    import datasets.iterable_dataset

    write_shapes_shards(tmp_path, splits=("val",), length=7, size=SIZE, shard_size=10)
    sleeps: list[float] = []
    monkeypatch.setattr(datasets.iterable_dataset.time, "sleep", sleeps.append)
    stream = ShardStream(source=str(tmp_path), split="val", shuffle_buffer=100, train=True)
    epochs = [[s["sample_id"] for s in stream] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == [f"shapes-val-0-{i}" for i in range(7)]
    assert epochs[0] != epochs[1]  # still shuffled, per epoch
    assert sleeps == []


def test_phrasecut_plus_policy_negatives_visual_prompts_and_text_weights():
    rows = referring_rows(40)
    policy = PromptPolicy(negative_prob=0.5, visual=True, seed=0)
    out = list(policy(rows))
    assert len(out) == 40
    negatives = [s for s in out if "negative_of" in s["meta"]]
    assert 8 <= len(negatives) <= 32
    by_id = {r["sample_id"]: r for r in rows}
    for s in out:
        if s in negatives:
            assert not s["mask"].any() and s["text"] != by_id[s["sample_id"]]["text"]
            assert s["meta"]["negative_of"] != s["meta"]["image_id"] and s["support"] is not None
        else:
            assert s["mask"].any() and s["text"] == by_id[s["sample_id"]]["text"]
        if s["support"] is None:
            assert s["text_weight"] == 1.0
        else:
            support, mask = s["support"], s["support_mask"]
            assert support.ndim == 3 and mask.shape == support.shape[:2] and mask.any()
            assert 0.0 <= s["text_weight"] <= 0.5
    assert any(s["support"] is None for s in out)  # rows without support fields stay invalid
    assert [s["text"] for s in policy(rows)] == [s["text"] for s in out]  # same seed and epoch: same draws


def test_excluded_classes_and_their_synonyms_are_dropped():
    rows = referring_rows(9, phrases=("red car", "black cattle", "tree"))
    kept = [s["text"] for s in PromptPolicy(exclude_classes=["cow"])(rows)]
    assert kept and "black cattle" not in kept and set(kept) == {"red car", "tree"}


def test_a_corrupt_row_is_reported_with_its_sample_id():
    rows = referring_rows(3)
    rows[1]["image"] = b"\x89PNG garbage"
    with pytest.raises(CorruptRow, match="'task-1'"):
        list(PromptPolicy()(rows))
    rows = referring_rows(3)
    rows[2]["support_mask"] = b"nope"
    with pytest.raises(CorruptRow, match=r"'task-2'.*support"):
        list(PromptPolicy(visual=True)(rows))


def test_two_ranks_cover_a_split_exactly_once(shapes_shards, tmp_path):
    """Two processes (RANK 0/1 of WORLD_SIZE 2), each with 0 and with 2 DataLoader workers."""
    env = {**os.environ, "WORLD_SIZE": "2", "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fixture_data.coverage_worker",
                str(shapes_shards),
                str(tmp_path / f"{rank}.json"),
            ],
            env={**env, "RANK": str(rank)},
        )
        for rank in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    seen = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    expected = {
        "shards-val": {f"shapes-val-0-{i}" for i in range(11)},
        "shuffled-val": {f"shapes-val-0-{i}" for i in range(11)},
        "shards-test": {f"shapes-test-0-{i}" for i in range(13)},
        "shuffled-test": {f"shapes-test-0-{i}" for i in range(13)},
        "shapes": {f"shapes-val-0-{i}" for i in range(11)},
    }
    for case, want in expected.items():
        for workers in (0, 2):
            rank0, rank1 = (s[f"{case}-w{workers}"] for s in seen)
            assert rank0 and rank1, (case, workers)  # both ranks get work
            assert sorted(rank0 + rank1) == sorted(want), (case, workers)  # each id exactly once


def test_streams_are_split_across_dataloader_workers(shapes_shards):
    import torch

    loader = torch.utils.data.DataLoader(
        ShardStream(source=str(shapes_shards), split="test"),
        batch_size=None,
        num_workers=2,
        collate_fn=lambda s: s,
    )
    ids = [s["sample_id"] for s in itertools.islice(loader, 100)]
    assert sorted(ids) == sorted(f"shapes-test-0-{i}" for i in range(13))
