"""Tiny models written in the on-disk layouts of other projects (a CLIP folder, original ``.pth`` files), and the
transformers reference predictions they are compared with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel

from clipseg.core.config import CLIP_MEAN, CLIP_STD

TOL = 1e-4
PROMPTS = ["a red circle", "a blue square"]


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


def save_transformers_folder(hf, folder, *, safetensors: bool = True) -> None:
    """``hf.save_pretrained(folder)``, with the weights as ``pytorch_model.bin`` (as CIDAS' hub
    repositories hold them) unless ``safetensors``: transformers 5 writes only safetensors."""
    hf.save_pretrained(folder)
    if not safetensors:
        (Path(folder) / "model.safetensors").unlink()
        torch.save(hf.state_dict(), Path(folder) / "pytorch_model.bin")


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


def image_and_pixels(size: int = 64) -> tuple[np.ndarray, torch.Tensor]:
    """A uint8 image at the model size (so preprocessing does no resampling) and its normalized tensor."""
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return image, (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def transformers_probs(hf, tokenizer, pixels: torch.Tensor) -> np.ndarray:
    enc = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = hf(pixel_values=pixels.repeat(len(PROMPTS), 1, 1, 1), **enc).logits
    return torch.sigmoid(logits).numpy()
