"""The lean inference forward of CLIP blocks equals transformers' layer forward."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

from clipseg.modeling.backbone import run_encoder_layer
from clipseg.modeling.fast_block import (
    FastClipBlocks,
    can_run_decoder_block_inference,
    decoder_block_inference,
)


def block(act: str) -> CLIPEncoderLayer:
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4, hidden_act=act)
    config._attn_implementation = "sdpa"
    layer = CLIPEncoderLayer(config).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("act", ["quick_gelu", "gelu"])
def test_matches_transformers_layer(act):
    layer, fast = block(act), FastClipBlocks()
    hidden = torch.randn(2, 17, 32)
    with torch.no_grad():
        assert FastClipBlocks.supports(layer)
        assert torch.allclose(fast(layer, hidden), run_encoder_layer(layer, hidden), atol=1e-5)


def test_stacked_weights_follow_weight_changes():
    layer, fast = block("quick_gelu"), FastClipBlocks()
    hidden = torch.randn(1, 5, 32)
    with torch.no_grad():
        fast(layer, hidden)
        layer.self_attn.k_proj.weight.mul_(2.0)  # e.g. load_state_dict or an optimizer step
        assert torch.allclose(fast(layer, hidden), run_encoder_layer(layer, hidden), atol=1e-5)


def test_not_used_with_autograd_or_in_training():
    layer = block("quick_gelu")
    assert not FastClipBlocks.supports(layer)  # grad enabled
    with torch.no_grad():
        assert not FastClipBlocks.supports(layer.train())


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_decoder_block_matches_torch_layer(act):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 24, activation=act, batch_first=True).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
        hidden = torch.randn(3, 10, 16)
        assert can_run_decoder_block_inference(layer)
        assert torch.allclose(decoder_block_inference(layer, hidden), layer(hidden), atol=1e-5)
    assert not can_run_decoder_block_inference(layer)  # autograd on: torch's layer is used
