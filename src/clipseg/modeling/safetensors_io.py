"""Reproducible, atomic safetensors files: the same weights and metadata give the same bytes."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save
from torch import Tensor

from clipseg.core.files import write_safetensors_bytes


def save_safetensors(tensors: dict[str, Tensor], path: str | Path, *, metadata: dict[str, str]) -> Path:
    """Like ``safetensors.torch.save_file``, but byte for byte reproducible and atomic (see ``write_safetensors_bytes``)."""
    return write_safetensors_bytes(save(tensors, metadata=metadata), path)
