"""End to end like transformers: a CIDAS-layout folder predicts what processor → model → upsampling gives.

The folder is made here: a tiny random ``CLIPSegForImageSegmentation``, the offline tokenizer and the
``preprocessor_config.json`` CIDAS ships (``ViTImageProcessor`` with ``resample=2``, i.e. bilinear).
transformers' side is loaded from that folder as a user gets it: ``CLIPSegProcessor.from_pretrained``
with the installed version's default image processor (transformers 4: the PIL one; 5: the torchvision
backend when torchvision is installed, else the PIL one), and each backend explicitly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPSegProcessor

import clipseg
from clipseg.core.config import CLIP_MEAN, CLIP_STD

PROMPTS = ["a red circle", "a blue square", "the green triangle on the left"]
SIZES = [(37, 90), (120, 50), (75, 64)]  # non-square, smaller and larger than the 64 px input
TOL = 1e-5
# As in CIDAS/clipseg-rd64-refined, but 64 px and CLIP's statistics (the tiny model's).
PREPROCESSOR_CONFIG = {
    "image_processor_type": "ViTImageProcessor",
    "processor_class": "CLIPSegProcessor",
    "do_resize": True,
    "size": {"height": 64, "width": 64},
    "resample": 2,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": list(CLIP_MEAN),
    "image_std": list(CLIP_STD),
}


def image_backend(processor: CLIPSegProcessor) -> str:
    """``pil`` or ``torchvision``: transformers 5 names its image processor's backend; 4 calls the
    torchvision one ``...Fast``."""
    image_processor = processor.image_processor
    fast = type(image_processor).__name__.endswith("Fast")
    return getattr(image_processor, "backend", "torchvision" if fast else "pil")


@pytest.fixture(scope="module")
def cidas_model(tmp_path_factory, make_hf_clipseg, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("cidas")
    hf = make_hf_clipseg(complex_head=True)
    hf.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG))
    return folder, hf


@pytest.fixture(scope="module", params=["default", "pil", "torchvision"])
def cidas_folder(request, cidas_model):
    """The folder, the transformers model and a ``CLIPSegProcessor`` loaded from the folder."""
    folder, hf = cidas_model
    if request.param == "default":
        return folder, hf, CLIPSegProcessor.from_pretrained(folder)
    if request.param == "torchvision":
        pytest.importorskip("torchvision", reason="the torchvision image processors need torchvision")
    processor = CLIPSegProcessor.from_pretrained(folder, use_fast=request.param == "torchvision")
    assert image_backend(processor) == request.param
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
