"""What `clipseg predict` writes: each mask, found by its prompt, covers its own object and no other.

The scenes are drawn with known objects (``fixture_data.known_scenes``); the shipped shapes-tiny
model segments them at IoU > 0.9, so the floors below leave room for a retrained model while a
mask of the wrong prompt, of no prompt or of an unmasked support image scores near 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixture_data.known_scenes import Thing, cutout, draw_scene, iou
from PIL import Image

from clipseg.cli import main

OWN_IOU_FLOOR = 0.7
OTHER_IOU_CEILING = 0.05

QUERY = (
    Thing("red", "circle", 34, 36, 22),
    Thing("blue", "square", 94, 40, 22),
    Thing("yellow", "triangle", 60, 98, 24),
)
# The same three kinds of object elsewhere on another background: only the support mask says which
# one the prompt means (unmasked, this scene matches nothing in QUERY).
SUPPORT = (
    Thing("yellow", "triangle", 30, 34, 20),
    Thing("blue", "square", 36, 92, 20),
    Thing("red", "circle", 92, 60, 20),
)


def _save(array: np.ndarray, path: Path) -> str:
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture()
def query(tmp_path) -> tuple[str, list[np.ndarray]]:
    image, masks = draw_scene(QUERY)
    return _save(image, tmp_path / "query.png"), masks


def _predict(
    image: str, prompt_args: list[str], out: Path, capsys, *extra: str
) -> list[tuple[str, np.ndarray]]:
    """Run `clipseg predict --json`; ``(prompt label, mask > half)`` of each written mask, in summary order."""
    assert main(["predict", image, *prompt_args, "--out", str(out), "--json", *extra]) == 0
    summary = json.loads(capsys.readouterr().out)
    (entry,) = summary["images"]
    return [(m["prompt"], np.asarray(Image.open(m["file"])) >= 128) for m in entry["masks"]]


def _assert_covers_only(mask: np.ndarray, target: int, masks: list[np.ndarray], label: str) -> None:
    scores = [round(iou(mask, m), 3) for m in masks]
    others = scores[:target] + scores[target + 1 :]
    assert scores[target] >= OWN_IOU_FLOOR, f"{label!r}: IoU with {QUERY[target].phrase} {scores}"
    assert max(others) <= OTHER_IOU_CEILING, f"{label!r}: IoU with every object {scores}"


@pytest.mark.parametrize("threshold", [None, "0.5"], ids=["probabilities", "binary"])
def test_each_text_mask_covers_its_own_object_and_no_other(query, tmp_path, capsys, threshold):
    image, masks = query
    order = [2, 0, 1]  # not the scene's order, so a mask written for another prompt cannot pass
    prompts = [arg for k in order for arg in ("--prompt", QUERY[k].phrase)]
    extra = ["--threshold", threshold] if threshold else []
    written = _predict(image, prompts, tmp_path / "out", capsys, *extra)
    assert [label for label, _ in written] == [QUERY[k].phrase for k in order]
    by_phrase = {thing.phrase: k for k, thing in enumerate(QUERY)}
    for label, mask in written:
        assert mask.shape == masks[0].shape
        _assert_covers_only(mask, by_phrase[label], masks, label)


def test_prompt_image_mask_says_which_support_object_to_find(query, tmp_path, capsys):
    image, masks = query
    support, support_masks = draw_scene(SUPPORT, background=(90, 100, 110))
    support_path = _save(support, tmp_path / "support.png")
    # Same support image twice, each with another object's mask: ignoring the masks makes the two
    # prompts identical, so at most one of them could pass.
    wanted = {"red circle": 0, "blue square": 1}
    specs = []
    for phrase in wanted:
        k = next(i for i, thing in enumerate(SUPPORT) if thing.phrase == phrase)
        mask_path = _save(support_masks[k].astype(np.uint8) * 255, tmp_path / f"{phrase}.png")
        specs += ["--prompt-image", f"{support_path}:{mask_path}"]
    written = _predict(image, specs, tmp_path / "out", capsys)
    assert len(written) == len(wanted)
    for (label, mask), (phrase, target) in zip(written, wanted.items()):
        assert "support.png" in label
        _assert_covers_only(mask, target, masks, f"{label} masked to the {phrase}")


def test_prompt_image_without_mask_is_used_whole(query, tmp_path, capsys):
    image, masks = query
    # A support image already cut out around its object (a prepared visual prompt) needs no mask.
    support_path = _save(cutout("blue", "square"), tmp_path / "blue-square-cutout.png")
    ((label, mask),) = _predict(image, ["--prompt-image", support_path], tmp_path / "out", capsys)
    assert "blue-square-cutout.png" in label
    _assert_covers_only(mask, 1, masks, label)
