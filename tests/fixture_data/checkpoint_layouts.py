"""Tiny models written in the on-disk layouts of other projects: a CLIP folder and original ``.pth`` files."""

from __future__ import annotations

import torch
from transformers import CLIPConfig, CLIPModel


def clip_folder_of(hf, folder) -> str:
    """Write the CLIP inside a transformers CLIPSeg as a plain ``CLIPModel`` folder (a "named" backbone)."""
    config = hf.config
    clip = CLIPModel(
        CLIPConfig(
            text_config=config.text_config.to_dict(),
            vision_config=config.vision_config.to_dict(),
            projection_dim=config.projection_dim,
        )
    )
    clip.load_state_dict(hf.clip.state_dict())
    clip.save_pretrained(folder)
    return str(folder)


def original_state_dict(hf) -> dict[str, torch.Tensor]:
    """The decoder of ``hf`` under the key names of the original ``rd64-uni.pth`` files.

    Written independently of the converter: ``nn.TransformerEncoderLayer`` keys, stacked q/k/v, and
    the unused ``reduce`` layer that the original class carries.
    """
    src = hf.decoder.state_dict()
    reduce_dim, width = src["reduces.0.weight"].shape
    state = {
        f"film_{op}.{leaf}": src[f"film_{op}.{leaf}"] for op in ("mul", "add") for leaf in ("weight", "bias")
    }
    state["reduce.weight"], state["reduce.bias"] = torch.randn(reduce_dim, width), torch.randn(reduce_dim)
    for i in range(len(hf.config.extract_layers)):
        for leaf in ("weight", "bias"):
            state[f"reduces.{i}.{leaf}"] = src[f"reduces.{i}.{leaf}"]
            layer = f"layers.{i}"
            qkv = [src[f"{layer}.self_attn.{p}_proj.{leaf}"] for p in "qkv"]
            state[f"blocks.{i}.self_attn.in_proj_{leaf}"] = torch.cat(qkv)
            state[f"blocks.{i}.self_attn.out_proj.{leaf}"] = src[f"{layer}.self_attn.out_proj.{leaf}"]
            state[f"blocks.{i}.linear1.{leaf}"] = src[f"{layer}.mlp.fc1.{leaf}"]
            state[f"blocks.{i}.linear2.{leaf}"] = src[f"{layer}.mlp.fc2.{leaf}"]
            state[f"blocks.{i}.norm1.{leaf}"] = src[f"{layer}.layer_norm1.{leaf}"]
            state[f"blocks.{i}.norm2.{leaf}"] = src[f"{layer}.layer_norm2.{leaf}"]
    for key, value in src.items():
        if key.startswith("transposed_convolution."):
            state["trans_conv." + key.removeprefix("transposed_convolution.")] = value
    return {k: v.clone() for k, v in state.items()}
