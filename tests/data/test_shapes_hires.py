"""High-resolution shapes scenes: anti-aliased or soft edges, object sizes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from clipseg.data.shapes.hires import HiresShapesConfig, hires_scene
from clipseg.data.shapes.scenes import COLORS


def test_scene_is_deterministic_with_anti_aliased_edges_and_objects_in_range():
    scene = hires_scene(3, 1)
    again = hires_scene(3, 1)
    np.testing.assert_array_equal(scene["image"], again["image"])
    assert scene["image"].shape == (512, 512, 3) and scene["alpha"].shape == (512, 512)
    edge = (scene["alpha"] > 0) & (scene["alpha"] < 1)
    assert edge.any()  # fractional coverage along the edges
    assert all(30 <= diameter <= 70 for *_, diameter in scene["objects"])
    color, shape = scene["text"].split()
    assert color in COLORS and (color, shape) in {(c, s) for c, s, _ in scene["objects"]}


def test_hard_edges_without_supersampling_and_wider_soft_edges_with_blur():
    hard = hires_scene(3, 1, HiresShapesConfig(supersample=1))
    assert set(np.unique(hard["alpha"])) <= {0.0, 1.0}
    crisp = hires_scene(3, 1)["alpha"]
    soft = hires_scene(3, 1, HiresShapesConfig(edge_sigma=2.0))["alpha"]
    assert ((soft > 0.01) & (soft < 0.99)).sum() > 2 * ((crisp > 0.01) & (crisp < 0.99)).sum()


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="min_diameter"):
        HiresShapesConfig(size=100, max_diameter=70)
