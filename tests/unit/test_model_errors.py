"""Bad input gets an error that says what was expected."""

from __future__ import annotations

import pytest
import torch

from clipseg.core.errors import BackboneUnavailableError
from clipseg.core.hub_access import hub_command
from clipseg.core.prompts import tokenize_prompts
from clipseg.modeling import ClipSeg, ClipSegConfig
from clipseg.modeling.convert import from_transformers


@pytest.fixture(scope="module")
def model(make_hf_clipseg) -> ClipSeg:
    return from_transformers(make_hf_clipseg()).eval()


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((3, 64, 64), r"B x 3 x H x W, got \(3, 64, 64\)"),
        ((2, 1, 64, 64), r"B x 3 x H x W, got \(2, 1, 64, 64\)"),
        ((0, 3, 64, 64), "empty batch"),
        ((1, 3, 8, 64), "smaller than one 16px patch"),
    ],
)
def test_bad_pixel_values(model, shape, match):
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(shape), torch.zeros(2, model.prompt_dim))


def test_pixel_values_must_be_float_tensors(model):
    with pytest.raises(TypeError, match="normalized floats"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), torch.zeros(2, model.prompt_dim))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        model([[0.0]], torch.zeros(2, model.prompt_dim))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((32,), r"N x 32 or B x N x 32, got \(32,\)"),
        ((2, 7), r"N x 32 or B x N x 32, got \(2, 7\)"),
        ((1, 2, 3, 32), "N x 32 or B x N x 32"),
        ((0, 32), "no prompts"),
        ((3, 2, 32), "per image but there are 2 images"),
    ],
)
def test_bad_conditionals(model, shape, match):
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(2, 3, 64, 64), torch.zeros(shape))


def test_bad_token_ids(model):
    with pytest.raises(ValueError, match="N x L tensor"):
        model.encode_text(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="at least one prompt"):
        model.encode_text(torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask shape"):
        model.encode_text(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids"):
        model.encode_text(torch.ones(2, 5))


def test_bad_visual_prompt(model):
    with pytest.raises(ValueError, match="visual prompt pixel_values must have shape B x 3 x H x W"):
        model.encode_visual_prompt(torch.zeros(3, 64, 64))


def test_empty_prompt_list(tiny_tokenizer):
    with pytest.raises(ValueError, match="empty prompt list"):
        tokenize_prompts(tiny_tokenizer, [])


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_string(tiny_tokenizer, prompt):
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        tokenize_prompts(tiny_tokenizer, ["a red circle", prompt])


def test_extract_layers_beyond_backbone(tiny_clip_dict):
    with pytest.raises(ValueError, match="reach beyond the 5 vision blocks"):
        ClipSeg(ClipSegConfig(backbone=tiny_clip_dict, extract_layers=(1, 5), reduce_dim=16))


def test_unavailable_backbone_says_what_to_download(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match=hub_command("download clipseg-tests/no-such-clip")):
        ClipSeg(ClipSegConfig(backbone="clipseg-tests/no-such-clip"))


def test_missing_backbone_folder(tmp_path):
    with pytest.raises(BackboneUnavailableError, match="does not exist"):
        ClipSeg(ClipSegConfig(backbone=str(tmp_path / "no" / "clip")))


def test_backbone_folder_without_model(tmp_path):
    with pytest.raises(BackboneUnavailableError, match="holds no loadable CLIPModel"):
        ClipSeg(ClipSegConfig(backbone=str(tmp_path)))
