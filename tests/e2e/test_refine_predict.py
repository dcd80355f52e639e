"""``refine`` and ``tiles`` of the predictor and of ``clipseg predict``, with the shipped shapes-tiny."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clipseg.cli import main
from clipseg.core.preprocess import preprocess
from clipseg.data.shapes.hires import hires_scene
from clipseg.eval.refine_quality import REFINE_SEED, segmentation_quality

# The fast check uses its own scenes: neither the bench's (REFINE_SEED) nor those the defaults were chosen on.
TEST_SEED = REFINE_SEED + 7


def _plain_upsampling(predictor, image: np.ndarray, prompts: list[str]) -> np.ndarray:
    """The predictor's output before refinement existed: model logits, bilinear upsampling, sigmoid."""
    backend = predictor.backend
    features = backend.encode_image(preprocess(image, predictor.preprocessing))
    logits = torch.from_numpy(backend.decode(features, predictor.embed_prompts(prompts)))
    full = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return torch.sigmoid(full[0]).numpy().astype(np.float32)


@pytest.fixture(scope="module")
def big_scene() -> dict:
    return hires_scene(TEST_SEED, 0)


def test_refine_none_is_plain_bilinear_upsampling(predictor, big_scene):
    # torch's interpolation as reference; the predictor's numpy upsampling rounds differently by ~1e-7.
    prompts = [big_scene["text"], "green object"]
    expected = _plain_upsampling(predictor, big_scene["image"], prompts)
    plain = predictor.predict(big_scene["image"], prompts)
    np.testing.assert_allclose(plain, expected, atol=1e-6)
    np.testing.assert_array_equal(predictor.predict(big_scene["image"], prompts, refine="none"), plain)


def test_guided_output_shape_and_range(predictor, big_scene):
    prompts = [big_scene["text"], "blue square"]
    out = predictor.predict(big_scene["image"], prompts, refine="guided")
    assert out.shape == (2, 512, 512) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - predictor.predict(big_scene["image"], prompts)).max() > 0.1


def test_guided_is_the_same_per_prompt_and_for_all_prompts_at_once(predictor, big_scene):
    prompts = [big_scene["text"], "green object", "red circle"]
    together = predictor.predict(big_scene["image"], prompts, refine="guided")
    for k, prompt in enumerate(prompts):
        alone = predictor.predict(big_scene["image"], prompt, refine="guided")[0]
        # The model's batched decoder differs from one prompt at a time by float rounding (~1e-7);
        # the filter itself is exact per prompt (tests/unit/test_refine_filter.py).
        np.testing.assert_allclose(together[k], alone, atol=1e-5, rtol=0)


def test_tiles_on_an_image_not_larger_than_the_input_size_fall_back_to_the_whole_image(predictor, scene):
    image = np.asarray(Image.open(scene[0]))[:90, :120]  # 90 < 96: one window would be the whole image
    prompts = [scene[1]["text"]]
    np.testing.assert_array_equal(
        predictor.predict(image, prompts, tiles=True), predictor.predict(image, prompts)
    )
    np.testing.assert_array_equal(
        predictor.predict(image, prompts, tiles=True, refine="guided"),
        predictor.predict(image, prompts, refine="guided"),
    )


def test_tiles_on_a_large_image_change_the_masks(predictor, big_scene):
    out = predictor.predict(big_scene["image"], big_scene["text"], tiles=True)
    assert out.shape == (1, 512, 512) and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, predictor.predict(big_scene["image"], big_scene["text"]))


def test_tiles_on_a_known_scene_keep_a_large_object_and_find_a_small_one(predictor):
    """A 1024² scene: a triangle 5 windows wide and a square of half a window. The whole-image view
    sees the triangle, the tiles must not lose it (issue 36: they erased objects larger than a window,
    IoU 0.02 here), and they must outline the square better than the whole-image view at 96² input."""
    from fixture_data.known_scenes import Thing, draw_scene

    from clipseg.eval.quality import iou

    things = (Thing("yellow", "triangle", 420, 520, 300), Thing("purple", "square", 880, 150, 30))
    image, masks = draw_scene(things, size=1024)
    for thing, mask in zip(things, masks):
        plain = predictor.predict(image, thing.phrase)[0] > 0.5
        tiled = predictor.predict(image, thing.phrase, tiles=True)[0] > 0.5
        if thing.shape == "triangle":
            assert iou(tiled, mask) >= max(0.9, iou(plain, mask) - 0.01), (iou(tiled, mask), iou(plain, mask))
        else:
            assert iou(tiled, mask) > iou(plain, mask) + 0.1, (iou(tiled, mask), iou(plain, mask))


def test_unknown_refine_mode_is_refused(predictor, big_scene):
    with pytest.raises(ValueError, match="unknown refine mode 'sharp'"):
        predictor.predict(big_scene["image"], "red circle", refine="sharp")


def test_guided_beats_none_on_high_resolution_scenes(predictor):
    scores = segmentation_quality(
        predictor, n=12, seed=TEST_SEED, variants=("none", "guided"), progress=False
    )
    assert scores["guided"]["miou"] >= scores["none"]["miou"] + 0.05, scores
    assert scores["guided"]["boundary_iou"] >= scores["none"]["boundary_iou"] + 0.1, scores


def test_cli_refine_guided_writes_masks(tmp_path, capsys, big_scene):
    path = tmp_path / "big.png"
    Image.fromarray(big_scene["image"]).save(path)
    out = tmp_path / "out"
    args = ["predict", str(path), "--prompt", big_scene["text"], "--out", str(out), "--json"]
    assert main([*args, "--refine", "guided", "--tiles"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["refine"] == "guided" and summary["tiles"] is True
    mask = np.asarray(Image.open(summary["images"][0]["masks"][0]["file"]))
    assert mask.shape == (512, 512) and mask.dtype == np.uint8 and mask.max() > 0


def test_cli_rejects_an_unknown_refine_mode(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "x.png", "--prompt", "a", "--refine", "crisp", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'crisp'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
