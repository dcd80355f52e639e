"""Acceptance of the shipped shapes-tiny model on fresh scenes (a seed never used in training)."""

from __future__ import annotations

from clipseg.quality import QUALITY_SEED, shapes_quality


def test_shapes_tiny_segments_fresh_scenes(predictor):
    scores = shapes_quality(predictor, n=120, seed=QUALITY_SEED, progress=False)
    assert scores["text_miou"] >= 0.80, scores
    assert scores["absent_marked_fraction"] < 0.02, scores
    assert scores["visual_miou"] >= 0.60, scores
