"""`clipseg.load_model` on zoo cards in the transformers (CIDAS) and original `.pth` layouts.

The files are made by the tests from a random tiny transformers CLIPSeg; predictions through the
public `Predictor` must equal transformers' own (sigmoid of its logits).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixture_data.checkpoint_layouts import (
    PROMPTS,
    TOL,
    clip_folder_of,
    image_and_pixels,
    original_state_dict,
    save_transformers_folder,
    transformers_probs,
)

import clipseg
from clipseg.core.files import sha256_of


@pytest.fixture()
def zoo(tmp_path, monkeypatch):
    """An empty zoo and cache; ``add(card)`` registers a card."""
    folder, cache = tmp_path / "zoo", tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("CLIPSEG_ZOO", str(folder))
    monkeypatch.setenv("CLIPSEG_CACHE", str(cache))
    cards: list[dict] = []

    def add(**card) -> None:
        cards.append({"description": "test", "source": "tests", "license": "MIT", "size_mb": 0.0, **card})
        (folder / "cards.json").write_text(json.dumps(cards))

    return folder, cache, add


def test_cidas_layout_card_predicts_like_transformers(make_hf_clipseg, tiny_tokenizer, zoo):
    _, cache, add = zoo
    hf = make_hf_clipseg(complex_head=True)
    folder = cache / "tiny-cidas"
    save_transformers_folder(hf, folder, safetensors=False)  # pytorch_model.bin, as on the hub
    tiny_tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 64, "width": 64}}))
    add(
        name="tiny-cidas",
        format="transformers",
        filename="pytorch_model.bin",
        sha256=sha256_of(folder / "pytorch_model.bin"),
    )
    image, pixels = image_and_pixels()
    ours = clipseg.load_model("tiny-cidas", device="cpu").predict(image, PROMPTS)
    assert np.abs(ours - transformers_probs(hf, tiny_tokenizer, pixels)).max() <= TOL


def test_original_pth_card_is_converted_once_and_predicts_like_transformers(
    make_hf_clipseg, tiny_tokenizer, zoo, tmp_path
):
    folder, cache, add = zoo
    hf = make_hf_clipseg()
    torch.save(original_state_dict(hf), folder / "tiny-uni.pth")
    backbone = clip_folder_of(hf, tmp_path / "clip")
    tiny_tokenizer.save_pretrained(backbone)
    add(
        name="tiny-uni",
        format="original",
        filename="tiny-uni.pth",
        sha256=sha256_of(folder / "tiny-uni.pth"),
        backbone=backbone,
        arch={"extract_layers": [1, 2, 4], "decoder_heads": 2, "image_size": 64},
    )
    image, pixels = image_and_pixels()
    want = transformers_probs(hf, tiny_tokenizer, pixels)
    first = clipseg.load_model("tiny-uni", device="cpu").predict(image, PROMPTS)
    converted = cache / "tiny-uni" / "converted" / "model.safetensors"
    assert converted.is_file()
    stamp = converted.stat().st_mtime_ns
    second = clipseg.load_model("tiny-uni", device="cpu").predict(image, PROMPTS)
    assert converted.stat().st_mtime_ns == stamp  # converted on first load only
    assert np.abs(first - want).max() <= TOL and np.abs(second - want).max() <= TOL
