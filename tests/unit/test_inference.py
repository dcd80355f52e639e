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


def test_predict_each_matches_predict_per_job_in_one_encode_and_one_decode(make_hf_clipseg, tiny_tokenizer):
    from clipseg.inference.inputs import Job
    from clipseg.inference.postprocess import PostProcess

    backend = TorchBackend(from_transformers(make_hf_clipseg()), tiny_tokenizer, device="cpu")
    predictor = Predictor(backend)
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, size, dtype=np.uint8) for size in [(50, 70, 3), (64, 64, 3), (33, 90, 3)]]
    support, support_mask = images[1], np.zeros((64, 64), np.float32)
    support_mask[10:30, 20:40] = 1
    jobs = [
        Job(image=images[0], prompts=["a red circle", "a blue square"]),
        Job(image=images[1], prompts=["a blue square", (support, support_mask)], refine="guided"),
        Job(
            image=images[2],
            prompts=["a red circle"],
            postprocess=PostProcess(threshold=0.4, negative=("a green square",), dilate=2),
        ),
    ]
    want = [
        predictor.predict(j.image, j.prompts, refine=j.refine, tiles=j.tiles, postprocess=j.postprocess)
        for j in jobs
    ]
    calls = []
    for name in ("encode_image", "decode", "encode_text"):
        method = getattr(backend, name)
        setattr(backend, name, lambda *a, _m=method, _n=name: calls.append((_n, len(a[0]))) or _m(*a))
    got = predictor.predict_each(jobs)
    # 3 images in one encode; "a red circle" and "a blue square" shared: 3 distinct texts in one call.
    assert calls == [("encode_text", 3), ("encode_image", 3), ("decode", 3)]
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    assert predictor.predict_each([]) == []
