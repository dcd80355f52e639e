"""save_pretrained / from_pretrained round trips and the converters from transformers and original files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from fixture_data.checkpoint_layouts import clip_folder_of, original_state_dict, save_transformers_folder
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from clipseg.cli import main
from clipseg.core.errors import CheckpointError, UnsafeCheckpointError
from clipseg.modeling import ClipSeg, ClipSegConfig
from clipseg.modeling.convert import (
    convert_original_checkpoint,
    convert_transformers_checkpoint,
    from_transformers,
)

TOL = 1e-4


def pixels(batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(3))


def predict(model: ClipSeg, text_inputs) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(pixels(), model.encode_text(**text_inputs))


def metadata(path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


# ------------------------------------------------------------------------------------------ our format


def test_full_round_trip(make_hf_clipseg, text_inputs, tmp_path):
    model = from_transformers(make_hf_clipseg())  # backbone from a config dict: stored in full
    path = model.save_pretrained(tmp_path / "full")
    meta = metadata(path)
    assert meta["clipseg_weights"] == "full"
    assert ClipSegConfig.from_json(meta["clipseg_config"]) == model.config
    assert any(k.startswith("backbone.") for k in load_file(str(path)))
    loaded = ClipSeg.from_pretrained(tmp_path / "full")
    assert torch.equal(predict(loaded, text_inputs), predict(model, text_inputs))


def test_decoder_only_round_trip_references_backbone(make_hf_clipseg, text_inputs, tmp_path):
    hf = make_hf_clipseg(complex_head=True)
    backbone = clip_folder_of(hf, tmp_path / "clip")
    model = from_transformers(hf, backbone=backbone)
    path = model.save_pretrained(tmp_path / "decoder")
    stored = load_file(str(path))
    assert stored and all(k.startswith("decoder.") for k in stored)
    assert metadata(path)["clipseg_weights"] == "decoder"
    loaded = ClipSeg.from_pretrained(path)  # the file itself works too
    assert loaded.config.backbone == backbone
    assert (predict(loaded, text_inputs) - predict(model, text_inputs)).abs().max() <= 1e-6


def test_decoder_only_file_whose_backbone_folder_is_gone_fails_in_one_line(make_hf_clipseg, tmp_path, capsys):
    hf = make_hf_clipseg()
    path = from_transformers(hf, backbone=clip_folder_of(hf, tmp_path / "clip")).save_pretrained(
        tmp_path / "m"
    )
    shutil.rmtree(tmp_path / "clip")
    image = tmp_path / "scene.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    argv = [
        "predict",
        str(image),
        "--prompt",
        "a red circle",
        "--model",
        str(path),
        "--out",
        str(tmp_path / "out"),
    ]
    capsys.readouterr()  # the set-up's output (transformers 5's save_pretrained draws a progress bar)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clipseg predict: error: model file ")
    assert str(path) in err and str(tmp_path / "clip") in err and "does not exist" in err
    assert not (tmp_path / "out").exists()


def test_trainable_named_backbone_is_saved_in_full(make_hf_clipseg, text_inputs, tmp_path):
    hf = make_hf_clipseg()
    config = ClipSegConfig(
        backbone=clip_folder_of(hf, tmp_path / "clip"),
        extract_layers=(1, 3),
        reduce_dim=16,
        decoder_heads=2,
        decoder_intermediate_size=24,
        freeze_backbone=False,
    )
    model = ClipSeg(config)
    assert any(p.requires_grad for p in model.backbone.parameters())
    with torch.no_grad():  # "training" changed the backbone: the file must carry it
        model.backbone.clip.vision_model.pre_layrnorm.bias.add_(0.5)
    path = model.save_pretrained(tmp_path / "trained")
    assert metadata(path)["clipseg_weights"] == "full"
    loaded = ClipSeg.from_pretrained(path)
    assert torch.equal(predict(loaded, text_inputs), predict(model, text_inputs))


def test_file_without_config_is_rejected(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="clipseg_config"):
        ClipSeg.from_pretrained(tmp_path)


def test_mismatched_keys_are_listed(make_hf_clipseg, tmp_path):
    hf = make_hf_clipseg()
    model = from_transformers(hf, backbone=clip_folder_of(hf, tmp_path / "clip"))
    path = model.save_pretrained(tmp_path / "ok")
    tensors, meta = load_file(str(path)), metadata(path)
    tensors["decoder.film_mull.weight"] = tensors.pop("decoder.film_mul.weight")
    tensors["decoder.reduces.0.bias"] = torch.zeros(3)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError) as info:
        ClipSeg.from_pretrained(tmp_path / "bad.safetensors")
    message = str(info.value)
    assert "missing (1): film_mul.weight" in message
    assert "unexpected (1): film_mull.weight" in message
    assert "reduces.0.bias (3,) != (16,)" in message


# ------------------------------------------------------------------------------------------ transformers layout


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_convert_transformers_folder(make_hf_clipseg, hf_logits, text_inputs, tmp_path, safe):
    hf = make_hf_clipseg(complex_head=True)
    save_transformers_folder(hf, tmp_path / "cidas", safetensors=safe)
    (tmp_path / "cidas" / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 96, "width": 96}})
    )
    model = convert_transformers_checkpoint(tmp_path / "cidas", out=tmp_path / "converted")
    assert model.image_size == 96
    want = hf_logits(hf, pixels(), **text_inputs)
    assert (predict(model, text_inputs) - want).abs().max() <= TOL
    reloaded = ClipSeg.from_pretrained(tmp_path / "converted")
    assert (predict(reloaded, text_inputs) - want).abs().max() <= TOL


# ------------------------------------------------------------------------------------------ original layout


@pytest.mark.parametrize("complex_head", [False, True], ids=["rd-uni", "rd-uni-refined"])
def test_convert_original_pth(make_hf_clipseg, hf_logits, text_inputs, tmp_path, complex_head):
    hf = make_hf_clipseg(complex_head=complex_head)
    torch.save(original_state_dict(hf), tmp_path / "rd16-uni.pth")
    backbone = clip_folder_of(hf, tmp_path / "clip")
    model = convert_original_checkpoint(
        tmp_path / "rd16-uni.pth",
        backbone=backbone,
        extract_layers=(1, 2, 4),
        decoder_heads=2,
        image_size=64,
        out=tmp_path / "converted",
    )
    assert model.config.complex_trans_conv is complex_head
    assert model.config.decoder_hidden_act == "relu"
    want = hf_logits(hf, pixels(), **text_inputs)
    assert (predict(model, text_inputs) - want).abs().max() <= TOL
    assert metadata(tmp_path / "converted" / "model.safetensors")["clipseg_weights"] == "decoder"
    reloaded = ClipSeg.from_pretrained(tmp_path / "converted")
    assert (predict(reloaded, text_inputs) - want).abs().max() <= TOL


def test_original_pth_with_mismatched_keys(make_hf_clipseg, tmp_path):
    hf = make_hf_clipseg()
    state = original_state_dict(hf)
    del state["blocks.1.norm2.bias"]
    state["blocks.1.extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        convert_original_checkpoint(
            tmp_path / "bad.pth", backbone=clip_folder_of(hf, tmp_path / "clip"), extract_layers=(1, 2, 4)
        )
    assert "missing (1): blocks.1.norm2.bias" in str(info.value)
    assert "unexpected (1): blocks.1.extra.weight" in str(info.value)


def test_original_pth_with_wrong_layer_count(make_hf_clipseg, tmp_path):
    hf = make_hf_clipseg()
    torch.save(original_state_dict(hf), tmp_path / "rd.pth")
    with pytest.raises(CheckpointError, match="3 decoder steps"):
        convert_original_checkpoint(tmp_path / "rd.pth", backbone="unused", extract_layers=(3, 7))


class Payload:
    """Stands for any pickled object: unpickling it would import and run code."""


def test_pth_needing_code_is_refused(tmp_path):
    torch.save({"film_mul.weight": torch.zeros(2, 2), "payload": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        convert_original_checkpoint(tmp_path / "evil.pth", backbone="unused")


def test_not_a_decoder_checkpoint(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not an original CLIPSeg decoder checkpoint"):
        convert_original_checkpoint(tmp_path / "other.pth", backbone="unused")
