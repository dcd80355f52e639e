"""Quality of the shipped shapes-tiny model on fresh scenes (a seed never used in training)."""

from __future__ import annotations

import pytest

from clipseg.quality import QUALITY_SEED, shapes_quality
from clipseg.zoo import get_card

# Acceptance bar of the zoo issue: text (color + shape) mIoU@0.5, absent prompts, visual prompts.
BAR = {"text_miou": 0.80, "absent_marked_fraction": 0.02, "visual_miou": 0.60}


@pytest.fixture(scope="module")
def scores(predictor) -> dict[str, float]:
    scenes = int(get_card("shapes-tiny").measured.get("shapes-quality/scenes", 120))
    return shapes_quality(predictor, n=scenes, seed=QUALITY_SEED, progress=False)


def test_shipped_model_still_reaches_the_numbers_on_its_card(scores):
    measured = get_card("shapes-tiny").measured
    assert measured, "the shapes-tiny card should record its measured quality"
    # Same seed and scenes as when the card was written: only a changed model or pipeline moves them.
    assert scores["text_miou"] >= measured["shapes-quality/text_miou"] - 0.02, scores
    assert scores["visual_miou"] >= measured["shapes-quality/visual_miou"] - 0.02, scores
    assert scores["absent_marked_fraction"] <= measured["shapes-quality/absent_marked_fraction"] + 0.01, (
        scores
    )
    assert scores["swapped_miou"] <= measured["shapes-quality/swapped_miou"] + 0.02, scores


def test_shapes_tiny_meets_the_acceptance_bar(scores):
    assert scores["text_miou"] >= BAR["text_miou"], scores
    assert scores["absent_marked_fraction"] < BAR["absent_marked_fraction"], scores
    assert scores["visual_miou"] >= BAR["visual_miou"], scores
    # The text score comes from reading the prompt, not from marking every object in the scene.
    assert scores["swapped_miou"] < 0.5 * scores["text_miou"], scores
