"""``bench/shapes_pose.py``: IoU by turn angle, checked with stand-in models whose answers are known."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from clipseg.data.shapes.drawing import rasterize

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "shapes_pose.py"


@pytest.fixture(scope="module")
def pose() -> ModuleType:
    """The bench script as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("shapes_pose", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Sees:
    """Marks every pixel that is not the background: right at every pose."""

    def predict(self, image: np.ndarray, prompts: list[str]) -> np.ndarray:
        return np.stack([(image != image[0, 0]).any(-1).astype(np.float32)] * len(prompts))


class KnowsOnlyUpright:
    """Marks the upright square of the object's size wherever the object is: right only at 0 degrees."""

    def predict(self, image: np.ndarray, prompts: list[str]) -> np.ndarray:
        area = (image != image[0, 0]).any(-1).sum()
        size = image.shape[0]
        radius = np.sqrt(area / 2)  # a square of circumradius r has area 2 r^2
        upright = rasterize("square", size / 2, size / 2, radius, 0.0, size)
        return np.stack([upright.astype(np.float32)] * len(prompts))


def test_a_model_that_sees_the_object_scores_one_at_every_pose(pose: ModuleType) -> None:
    for shape in ("square", "triangle", "circle"):
        scores = pose.pose_scores(Sees(), shape, step=30)
        assert sorted(scores) == list(range(0, pose.SYMMETRY[shape], 30))
        assert min(scores.values()) == 1.0


def test_a_model_that_knows_only_upright_squares_falls_off_towards_45_degrees(pose: ModuleType) -> None:
    scores = pose.pose_scores(KnowsOnlyUpright(), "square", step=15)
    assert scores[0] > 0.9  # the same square, up to the radius recovered from its pixel area
    # An upright square over the same square turned 45 degrees: an octagon in common, IoU ~0.7; the
    # score falls with the turn and rises again towards 90 (the square's symmetry).
    assert scores[0] > scores[15] > scores[30] > scores[45] < 0.75
    assert scores[60] > scores[45] and scores[75] > scores[60]
