"""The numpy inference pieces: upsampling as torch does it, and encoding an image once for later prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipseg.backends.torch import TorchBackend
from clipseg.inference import Predictor
from clipseg.inference.upsample import resize_bilinear
from clipseg.modeling.convert import from_transformers


@pytest.mark.parametrize("size", [(64, 64), (37, 90), (200, 13), (5, 7)])
def test_upsampling_matches_torch_bilinear(size):
    maps = np.random.default_rng(0).normal(size=(3, 16, 16)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(maps)[None], size=size, mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(resize_bilinear(maps, size), want.numpy(), atol=1e-5)


def test_an_embedded_image_predicts_like_the_image_and_is_encoded_once(make_hf_clipseg, tiny_tokenizer):
    backend = TorchBackend(from_transformers(make_hf_clipseg()), tiny_tokenizer, device="cpu")
    predictor = Predictor(backend)
    image = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    want = predictor.predict(image, ["a red circle", "a blue square"])
    calls = []
    encode = backend.encode_image
    backend.encode_image = lambda pixels: calls.append(pixels.shape) or encode(pixels)
    embedding = predictor.embed_image(image)
    first = predictor.predict(embedding, ["a red circle"])
    second = predictor.predict(embedding, ["a blue square"])
    assert calls == [(1, 3, 64, 64)] and embedding.size == (50, 70)
    np.testing.assert_allclose(np.concatenate([first, second]), want, atol=1e-6)
