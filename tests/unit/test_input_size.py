"""A model file made at one input size starts a run, or becomes a model, at another (position embedding resampled)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from clipseg.modeling import ClipSegConfig
from clipseg.modeling.input_size import POSITION_KEY, resample_position_embedding, with_input_size
from clipseg.modeling.tiny import tiny_clip_config
from clipseg.training.finetune_output import resize_file
from clipseg.training.module import ClipSegModule
from clipseg.training.pack import pack_module
from clipseg.zoo import load_weights

CORPUS = ["a red circle", "a green square"]


def tiny_config(image_size: int) -> dict:
    """A random-backbone ClipSegConfig dict at ``image_size`` px with 8-px patches (the text tower is sized
    to the tokenizer by ``build_model``)."""
    backbone = tiny_clip_config(
        vocab_size=8, hidden_size=16, num_layers=2, image_size=image_size, patch_size=8
    )
    return ClipSegConfig(
        backbone=backbone, extract_layers=(0, 1), reduce_dim=8, image_size=image_size
    ).to_dict()


@pytest.fixture(scope="module")
def file_at_32(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    module = ClipSegModule(config=tiny_config(32), tokenizer_corpus=CORPUS)
    return pack_module(module, tmp_path_factory.mktemp("m") / "t32.safetensors", "t32")


def test_init_from_a_32px_file_into_a_48px_run_resamples_the_grid_and_keeps_the_rest(file_at_32, caplog):
    small, _ = load_weights(file_at_32)
    with caplog.at_level(logging.WARNING):
        run = ClipSegModule(
            config=tiny_config(48), tokenizer_corpus=CORPUS, init_from=str(file_at_32)
        ).model.eval()
    assert "resampled from a 4x4 to a 6x6 patch grid" in caplog.text
    before, after = small.state_dict(), run.state_dict()
    assert before[POSITION_KEY].shape == (1 + 4 * 4, 16) and after[POSITION_KEY].shape == (1 + 6 * 6, 16)
    # The class position as it was.
    torch.testing.assert_close(after[POSITION_KEY][0], before[POSITION_KEY][0])
    for key, value in before.items():
        if key != POSITION_KEY:
            torch.testing.assert_close(after[key], value)
    # The grid is what transformers interpolates on every forward pass of the 32 px model fed 48 px,
    # so the 48 px model computes what the 32 px one computes at 48 px.
    embeddings = small.backbone.clip.vision_model.embeddings
    reference = embeddings.interpolate_pos_encoding(torch.zeros(1, 1 + 6 * 6, 16), 48, 48)[0]
    torch.testing.assert_close(after[POSITION_KEY], reference)
    pixels, prompts = torch.randn(2, 3, 48, 48), torch.randn(3, small.prompt_dim)
    with torch.no_grad():
        logits = run(pixels, prompts)
        torch.testing.assert_close(logits, small.eval()(pixels, prompts))
    assert logits.shape == (2, 3, 48, 48)


def test_resize_file_writes_a_model_that_predicts_at_its_new_size(file_at_32, tmp_path):
    out = resize_file(str(file_at_32), 48, tmp_path / "t48.safetensors")
    model, _ = load_weights(out)
    assert model.image_size == 48 and model.backbone.clip.config.vision_config.image_size == 48
    assert model.state_dict()[POSITION_KEY].shape == (1 + 6 * 6, 16)
    with pytest.raises(ValueError, match="multiple of the patch size 8"):
        with_input_size(model, 50)


def test_resampling_to_the_same_grid_changes_nothing_and_a_non_square_grid_is_refused():
    weight = torch.randn(1 + 5 * 5, 4)
    torch.testing.assert_close(resample_position_embedding(weight, 5), weight)
    with pytest.raises(ValueError, match="not 1 \\+ a square grid"):
        resample_position_embedding(torch.randn(1 + 12, 4), 4)
