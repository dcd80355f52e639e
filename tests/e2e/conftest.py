"""End-to-end fixtures: the shipped shapes-tiny model and a scene to segment."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from clipseg.data.shapes.scenes import ShapesConfig, draw_sample


@pytest.fixture(scope="session")
def predictor():
    from clipseg import load_model

    return load_model("shapes-tiny", device="cpu")


@pytest.fixture()
def scene(tmp_path) -> tuple[Path, dict]:
    """A fresh shapes scene saved as PNG, with its sample (prompt = a present color + shape)."""
    sample, _ = draw_sample(
        4242, 0, split="test", config=ShapesConfig(size=128, negative_prob=0.0, visual_prob=1.0)
    )
    path = tmp_path / "scene.png"
    Image.fromarray(sample["image"]).save(path)
    return path, sample
