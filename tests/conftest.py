"""Shared fixtures: a tiny CLIP-format tokenizer and tiny random backbones, made on the fly (no network)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

CORPUS = [
    "a photo of a red circle.",
    "a photograph of a green square.",
    "an image of a blue triangle.",
    "a cropped photo of a yellow object.",
    "a good photo of one purple orange small large left right top bottom on the",
    "a bad photo of the cat dog person car tree sky",
]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest on one thread; with several, OpenMP spin-waits on the shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    from clipseg.core.tokenizer import build_clip_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    build_clip_tokenizer(CORPUS, out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))


@pytest.fixture(scope="session")
def tiny_clip_dict(tiny_tokenizer):
    from clipseg.modeling.tiny import tiny_clip_config

    return tiny_clip_config(vocab_size=len(tiny_tokenizer), num_layers=5)
