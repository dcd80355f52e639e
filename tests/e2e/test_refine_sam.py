"""``refine="sam"`` with a tiny random SAM (transformers); skipped when transformers has no SAM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clipseg.backends.sam import SamRefiner, mask_boxes
from clipseg.cli import main
from clipseg.data.shapes.hires import HiresShapesConfig, hires_scene

sam = pytest.importorskip("transformers.models.sam", reason="this transformers has no SAM")


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    """A tiny random SAM (64² input) saved with its processor, as a user's SAM folder would be."""
    import torch

    torch.manual_seed(0)
    config = sam.SamConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 8,
            "output_channels": 16,
            "mlp_dim": 64,
            "global_attn_indexes": [1],
            "window_size": 4,
            "num_pos_feats": 8,
        },
        prompt_encoder_config={
            "hidden_size": 16,
            "image_size": 64,
            "patch_size": 8,
            "mask_input_channels": 4,
        },
        mask_decoder_config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "mlp_dim": 32,
        },
    )
    folder = tmp_path_factory.mktemp("tiny-sam")
    sam.SamModel(config).save_pretrained(folder)
    processor = sam.SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    sam.SamProcessor(image_processor=processor).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def scene() -> dict:
    return hires_scene(11, 1, HiresShapesConfig(size=256, min_diameter=40, max_diameter=70))


def test_boxes_of_masks():
    probs = np.zeros((2, 10, 12), np.float32)
    probs[0, 2:5, 3:9] = 0.9
    assert mask_boxes(probs) == [[3.0, 2.0, 9.0, 5.0], None]


def test_sam_replaces_masks_with_a_box_and_keeps_empty_ones(predictor, sam_dir, scene):
    predictor.sam = SamRefiner.from_pretrained(str(sam_dir), device="cpu")
    try:
        prompts = [scene["text"], "green object", "purple triangle"]
        plain = predictor.predict(scene["image"], prompts)
        out = predictor.predict(scene["image"], prompts, refine="sam")
    finally:
        predictor.sam = None
    assert out.shape == plain.shape == (3, 256, 256) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    for k, box in enumerate(mask_boxes(plain)):
        if box is None:
            np.testing.assert_array_equal(out[k], plain[k])
        else:
            assert not np.array_equal(out[k], plain[k])
    assert any(box is not None for box in mask_boxes(plain))


def test_sam_without_a_model_is_a_clear_error(predictor, scene):
    with pytest.raises(ValueError, match="refine='sam' needs a SAM model"):
        predictor.predict(scene["image"], "red circle", refine="sam")


def test_cli_refine_sam(sam_dir, scene, tmp_path, capsys):
    path = tmp_path / "scene.png"
    Image.fromarray(scene["image"]).save(path)
    args = ["predict", str(path), "--prompt", scene["text"], "--out", str(tmp_path / "o"), "--json"]
    assert main([*args, "--refine", "sam", "--sam", str(sam_dir)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["refine"] == "sam"
    assert np.asarray(Image.open(summary["images"][0]["masks"][0]["file"])).shape == (256, 256)
    assert main([*args, "--refine", "sam"]) == 1
    assert "error: --refine sam and --sam MODEL go together" in capsys.readouterr().err
    assert main([*args, "--refine", "sam", "--sam", str(tmp_path / "no-sam")]) == 1
    assert "error: cannot load the SAM model" in capsys.readouterr().err
