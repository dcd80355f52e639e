"""End to end like transformers: a CIDAS-layout folder predicts what processor → model → upsampling gives.

The folder is made here: a tiny random ``CLIPSegForImageSegmentation`` and a ``CLIPSegProcessor``
(``ViTImageProcessor`` with ``resample=2``, i.e. bilinear, as CIDAS ships) with the offline tokenizer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPSegProcessor, ViTImageProcessor

import clipseg
from clipseg.core.config import CLIP_MEAN, CLIP_STD

PROMPTS = ["a red circle", "a blue square", "the green triangle on the left"]
SIZES = [(37, 90), (120, 50), (75, 64)]  # non-square, smaller and larger than the 64 px input
TOL = 1e-5


@pytest.fixture(scope="module")
def cidas_folder(tmp_path_factory, make_hf_clipseg, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("cidas")
    hf = make_hf_clipseg(complex_head=True)
    hf.save_pretrained(folder)
    image_processor = ViTImageProcessor(
        size={"height": 64, "width": 64}, resample=2, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)
    )
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tiny_tokenizer)
    processor.save_pretrained(folder)
    return folder, hf, processor


def scene(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random image (noise alone would hide a filter difference in its own noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    from PIL import Image

    return np.asarray(Image.fromarray(small).resize(size[::-1], Image.BICUBIC))


def transformers_probs(hf, processor, image: np.ndarray, *, texts=None, supports=None) -> np.ndarray:
    """processor → model → bilinear upsampling to the image size → sigmoid, ``N x H x W``."""
    count = len(texts or supports)
    if texts is not None:
        inputs = processor(text=texts, images=[image] * count, padding=True, return_tensors="pt")
    else:
        inputs = processor(images=[image] * count, visual_prompt=supports, return_tensors="pt")
    with torch.no_grad():
        logits = hf(**inputs).logits.view(count, 1, *inputs["pixel_values"].shape[-2:])
    full = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return torch.sigmoid(full[:, 0]).numpy()


@pytest.mark.parametrize("size", SIZES)
def test_text_prompts_match_the_transformers_pipeline(cidas_folder, size):
    folder, hf, processor = cidas_folder
    image = scene(size, seed=sum(size))
    ours = clipseg.load_model(folder, device="cpu").predict(image, PROMPTS)
    want = transformers_probs(hf, processor, image, texts=PROMPTS)
    assert ours.shape == want.shape == (len(PROMPTS), *size)
    assert np.abs(ours - want).max() <= TOL


@pytest.mark.parametrize("size", SIZES)
def test_visual_prompts_match_the_transformers_pipeline(cidas_folder, size):
    folder, hf, processor = cidas_folder
    image = scene(size, seed=1)
    supports = [scene((50, 80), seed=2), scene((90, 40), seed=3)]
    ours = clipseg.load_model(folder, device="cpu").predict(
        image, [clipseg.Prompt(image=s) for s in supports]
    )
    want = transformers_probs(hf, processor, image, supports=supports)
    assert np.abs(ours - want).max() <= TOL


def test_the_folder_sets_the_filter_and_a_bicubic_resize_would_not_match(cidas_folder):
    folder, hf, processor = cidas_folder
    predictor = clipseg.load_model(folder, device="cpu")
    assert predictor.preprocessing.resample == "bilinear" and predictor.preprocessing.size == 64
    image = scene(SIZES[0], seed=sum(SIZES[0]))
    want = transformers_probs(hf, processor, image, texts=PROMPTS)
    predictor.backend.model.config.image_resample = "bicubic"  # what the predictor used to do
    assert np.abs(predictor.predict(image, PROMPTS) - want).max() > 10 * TOL
