"""Small CLIP architectures for tests and the shapes-tiny model (random init, no download)."""

from __future__ import annotations

from typing import Any

from transformers import CLIPConfig


def tiny_clip_config(
    *,
    vocab_size: int,
    eos_token_id: int | None = None,
    hidden_size: int = 32,
    num_layers: int = 4,
    num_heads: int = 4,
    projection_dim: int = 32,
    image_size: int = 64,
    patch_size: int = 16,
    max_position_embeddings: int = 77,
) -> dict[str, Any]:
    """A ``CLIPConfig`` dict with the given sizes; text and vision towers share the width.

    ``eos_token_id`` defaults to the last id of the vocabulary (where ``build_clip_tokenizer`` puts it).
    """
    eos = vocab_size - 1 if eos_token_id is None else eos_token_id
    tower = {
        "hidden_size": hidden_size,
        "intermediate_size": 4 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "projection_dim": projection_dim,
    }
    text = {
        **tower,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_position_embeddings,
        "eos_token_id": eos,
        "bos_token_id": eos - 1,
        "pad_token_id": eos,
    }
    vision = {**tower, "image_size": image_size, "patch_size": patch_size}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim).to_dict()
