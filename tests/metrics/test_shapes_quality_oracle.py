"""``clipseg.eval.quality.shapes_quality`` checked against predictors whose scores are known in advance.

The card's numbers and the acceptance test both come from this measure, so a bug in it would move
them together; here fake predictors that know each scene's truth pin what it must return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pytest

from clipseg.data.shapes.scenes import COLORS, SHAPES, ShapesConfig, draw_sample
from clipseg.eval.quality import QUALITY_SEED, shapes_quality

SCENES = 24
SIZE = 64
BASE = ShapesConfig(size=SIZE, negative_prob=0.0, visual_prob=1.0, category_labels=True)


def _category(text: str) -> int:
    """Category id of a "color shape" phrase in ``shapes.category_map``."""
    color, shape = text.split()
    return 1 + list(COLORS).index(color) * len(SHAPES) + SHAPES.index(shape)


class OraclePredictor:
    """Knows every scene of the stream: ``predict`` gives ``answer(truth)`` for each prompt.

    ``truth`` is the ``H x W`` bool mask of what the prompt names (text: its color + shape; support
    image: the color + shape it was drawn to show), read off the scene's per-pixel category map.
    Probabilities are 0.75 / 0.25, so the measure must threshold them, not test for non-zero.
    """

    def __init__(self, answer: Callable[[np.ndarray], np.ndarray], *, seed: int) -> None:
        self.answer = answer
        self.labels: dict[bytes, np.ndarray] = {}  # scene image → category map
        self.support_category: dict[bytes, int] = {}  # support image → the category it shows
        for i in range(SCENES):
            for negative_prob in (0.0, 1.0):
                sample, support = draw_sample(
                    seed, i, split="test", config=replace(BASE, negative_prob=negative_prob)
                )
                self.labels[sample["image"].tobytes()] = sample["label"]
                if support is not None:
                    self.support_category[support[0].tobytes()] = _category(sample["text"])

    def predict(self, image: np.ndarray, prompts: Sequence | object) -> np.ndarray:
        """``N x H x W`` probabilities, like ``Predictor.predict``."""
        label = self.labels[np.asarray(image).tobytes()]
        prompts = prompts if isinstance(prompts, (list, tuple)) else [prompts]
        out = []
        for prompt in prompts:
            text = prompt if isinstance(prompt, str) else prompt.text
            if text is not None:
                category = _category(text)
            else:
                category = self.support_category[np.asarray(prompt.image).tobytes()]
            out.append(np.where(self.answer(label == category), 0.75, 0.25).astype(np.float32))
        return np.stack(out)


def _measure(answer: Callable[[np.ndarray], np.ndarray], seed: int = QUALITY_SEED) -> dict[str, float]:
    return shapes_quality(OraclePredictor(answer, seed=seed), n=SCENES, seed=seed, size=SIZE, progress=False)


def _targets(seed: int = QUALITY_SEED) -> list[np.ndarray]:
    return [draw_sample(seed, i, split="test", config=BASE)[0]["mask"] > 0.5 for i in range(SCENES)]


def test_true_masks_score_one_and_mark_nothing_absent():
    scores = _measure(lambda truth: truth)
    assert scores["text_miou"] == scores["visual_miou"] == 1.0, scores
    assert scores["absent_marked_fraction"] == 0.0, scores
    # The swapped prompt names another object, which never overlaps the target.
    assert scores["swapped_miou"] == 0.0, scores
    assert scores["n_shared_color"] == 0 or scores["text_miou_shared_color"] == 1.0, scores


def test_empty_masks_score_zero():
    scores = _measure(np.zeros_like)
    assert scores["text_miou"] == scores["visual_miou"] == scores["swapped_miou"] == 0.0, scores
    assert scores["absent_marked_fraction"] == 0.0, scores


def test_marking_every_pixel_marks_all_of_absent_and_scores_the_target_area():
    scores = _measure(np.ones_like)
    assert scores["absent_marked_fraction"] == 1.0, scores
    # Every pixel marked: intersection = target, union = image, so the IoU is the target's area.
    expected = np.mean([target.mean() for target in _targets()])
    assert scores["text_miou"] == pytest.approx(expected) and scores["visual_miou"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [QUALITY_SEED, 7])
def test_half_of_each_true_mask_scores_the_half_it_covers(seed):
    def top_half(truth: np.ndarray) -> np.ndarray:
        return truth & (np.arange(SIZE)[:, None] < SIZE // 2)

    # Everything marked is right (precision 1), so only an IoU sees the missing lower half.
    scores = _measure(top_half, seed)
    expected = np.mean([top_half(target).sum() / target.sum() for target in _targets(seed)])
    assert 0.2 < expected < 0.8
    assert scores["text_miou"] == pytest.approx(expected) and scores["visual_miou"] == pytest.approx(expected)
    assert scores["absent_marked_fraction"] == 0.0, scores
