"""Tiny random transformers CLIPSeg models and their ClipSeg twins, made on the fly (no download)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

PROMPTS = ["a red circle", "a blue triangle", "the green square on the left"]


@pytest.fixture(scope="session")
def make_hf_clipseg(tiny_clip_dict) -> Callable[..., torch.nn.Module]:
    """``make(complex_head=False, extract_layers=(1, 2, 4), cond_layer=0)``: a random tiny CLIPSegForImageSegmentation.

    Every weight is drawn here rather than taken from transformers' init, which differs between
    transformers 4 and 5 (5 leaves the decoder's transposed convolutions at unit scale, so logits
    reach hundreds and a fixed tolerance means something else): matrices and kernels ~ N(0, 1/fan_in),
    vectors (biases, norms, the class embedding) get noise on top of their init, so that zero biases
    and unit norms (which hide swapped or dropped tensors) do not occur.
    """
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    def make(*, complex_head: bool = False, extract_layers=(1, 2, 4), cond_layer: int = 0, seed: int = 0):
        torch.manual_seed(seed)
        config = CLIPSegConfig(
            text_config=tiny_clip_dict["text_config"],
            vision_config=tiny_clip_dict["vision_config"],
            projection_dim=tiny_clip_dict["projection_dim"],
            extract_layers=list(extract_layers),
            reduce_dim=16,
            decoder_num_attention_heads=2,
            decoder_intermediate_size=24,
            conditional_layer=cond_layer,
            use_complex_transposed_convolution=complex_head,
        )
        hf = CLIPSegForImageSegmentation(config).eval()
        with torch.no_grad():
            for p in hf.parameters():
                if p.ndim >= 2:
                    p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
                else:
                    p.add_(0.05 * torch.randn_like(p))
        return hf

    return make


@pytest.fixture(scope="session")
def text_inputs(tiny_tokenizer) -> dict[str, torch.Tensor]:
    """``PROMPTS`` tokenized (``N x L`` ids and mask, right-padded)."""
    from clipseg.core.prompts import tokenize_prompts

    return tokenize_prompts(tiny_tokenizer, PROMPTS, return_tensors="pt")


def _hf_logits(hf, pixel_values: torch.Tensor, **prompt_inputs: torch.Tensor) -> torch.Tensor:
    """transformers' logits for every (image, prompt) pair, as ``B x N x H x W``.

    transformers pairs image i with prompt i, so each image is repeated N times and the prompts B times.
    """
    batch = pixel_values.shape[0]
    count = next(iter(prompt_inputs.values())).shape[0]
    repeated = {k: v.repeat(batch, *([1] * (v.ndim - 1))) for k, v in prompt_inputs.items()}
    with torch.no_grad():
        logits = hf(pixel_values=pixel_values.repeat_interleave(count, dim=0), **repeated).logits
    return logits.view(batch, count, *logits.shape[-2:])


@pytest.fixture(scope="session")
def hf_logits() -> Callable[..., torch.Tensor]:
    """``hf_logits(hf, pixel_values, input_ids=..., attention_mask=...)`` or ``conditional_pixel_values=...``."""
    return _hf_logits


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """The shipped shapes-tiny exported to ONNX (``clipseg export onnx``), once per session."""
    from clipseg.export.onnx import export_onnx
    from clipseg.zoo import load_weights

    model, tokenizer = load_weights("shapes-tiny")
    out = tmp_path_factory.mktemp("onnx") / "shapes-tiny"
    export_onnx(model, tokenizer, out, source="shapes-tiny")
    return out
