"""Shared reader helpers: seeded support candidates, PNG coding and file checks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clipseg.data.sample_io import (
    encode_png,
    make_row,
    read_image,
    read_png_array,
    sample_rng,
    seeded_candidates,
)
from clipseg.data.schema import SHARD_FEATURES, BadSample


@pytest.mark.parametrize("n", [1, 2, 3, 10, 12])
def test_seeded_candidates_visit_every_allowed_member_once_preferred_first(n):
    pool = list(range(n))
    order = list(
        seeded_candidates(sample_rng(0, "x"), pool, allowed=lambda c: c != 0, preferred=lambda c: c % 2)
    )
    assert sorted(order) == pool[1:]
    odd = [c for c in order if c % 2]
    assert order[: len(odd)] == odd


def test_seeded_candidates_depend_on_seed_and_key_only():
    pool = [f"t{i}" for i in range(50)]

    def first(*key):
        return next(seeded_candidates(sample_rng(*key), pool, allowed=lambda c: True))

    assert first(0, "a") == first(0, "a")
    assert len({first(seed, "a") for seed in range(20)}) > 5


def test_encode_png_round_trip_and_modes(tmp_path):
    values = np.arange(48, dtype=np.uint8).reshape(6, 8)
    png = encode_png(values)
    with Image.open(io.BytesIO(png)) as img:
        assert img.mode == "L" and (np.asarray(img) == values).all()
    assert set(np.unique(np.asarray(Image.open(io.BytesIO(encode_png(values > 20)))))) == {0, 255}
    with pytest.raises(ValueError, match="H x W"):
        encode_png(np.zeros((2, 2, 3), np.uint8))
    Image.fromarray(values).convert("P").save(tmp_path / "p.png")
    assert (read_png_array(tmp_path / "p.png", "s") == values).all()  # palette indices read back


def test_read_image_keeps_bytes_and_names_bad_files(tmp_path):
    Image.new("RGB", (5, 3), "red").save(tmp_path / "a.jpg")
    data, size = read_image(tmp_path / "a.jpg", "s")
    assert data == (tmp_path / "a.jpg").read_bytes() and size == (5, 3)
    (tmp_path / "b.jpg").write_bytes((tmp_path / "a.jpg").read_bytes()[:40])  # truncated
    for name, reason in [("missing.jpg", "missing"), ("b.jpg", "not")]:
        with pytest.raises(BadSample, match=f"s: image .*{name}.*{reason}"):
            read_image(tmp_path / name, "s")


def test_make_row_has_every_shard_column():
    row = make_row("id", b"i", b"m", meta={"k": 1})
    assert set(row) == set(SHARD_FEATURES)
    assert row["support_image"] is None and row["label"] is None and row["meta"] == '{"k": 1}'
