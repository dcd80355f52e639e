"""ONNX parity at the real model's size: a random-weight ViT-B/16 CLIPSeg (CIDAS architecture, issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

import clipseg
from clipseg.backends.torch import TorchBackend
from clipseg.core.prompts import Prompt
from clipseg.data.shapes.scenes import ShapesConfig, draw_sample
from clipseg.export.onnx import export_onnx
from clipseg.inference import Predictor
from clipseg.modeling.convert import random_cidas_clipseg

TOL = 1e-4
WORDS = ["red circle", "green square", "blue triangle", "yellow object", "purple", "orange", "cat", "dog"]


@pytest.mark.slow
def test_vit_b16_onnx_probabilities_match_torch(tmp_path, tiny_tokenizer):
    model = random_cidas_clipseg(tokenizer=tiny_tokenizer)
    export_onnx(model, tiny_tokenizer, tmp_path / "vit-b16")
    torch_predictor = Predictor(TorchBackend(model, tiny_tokenizer, device="cpu"))
    onnx_predictor = clipseg.load_model(tmp_path / "vit-b16")
    sample, support = draw_sample(3, 0, split="test", config=ShapesConfig(size=400, visual_prob=1.0))
    image = np.ascontiguousarray(np.asarray(sample["image"])[:, :300])  # non-square: 400 x 300
    visual = [Prompt(image=support[0], mask=support[1]), Prompt(image=support[0])] * 4
    for prompts in (WORDS[:1], WORDS, visual[:1], visual):
        want = torch_predictor.predict(image, prompts)
        got = onnx_predictor.predict(image, prompts)
        assert got.shape == want.shape == (len(prompts), 400, 300)
        assert np.abs(got - want).max() <= TOL
