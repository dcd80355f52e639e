"""Reproducible, atomic safetensors files: the same weights and metadata give the same bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from safetensors.torch import save
from torch import Tensor


def save_safetensors(tensors: dict[str, Tensor], path: str | Path, *, metadata: dict[str, str]) -> Path:
    """Like ``safetensors.torch.save_file``, but byte for byte reproducible, and atomic.

    safetensors writes its metadata in hash order, which changes from process to process, so one
    checkpoint exported twice got two sha256 digests (and zoo cards pin digests). Here the JSON header
    is written with sorted keys; tensor offsets are explicit in it, so the data block is unchanged.
    The file is written next to ``path`` and renamed: an interrupted save leaves no half-written file.
    """
    path = Path(path)
    blob = save(tensors, metadata=metadata)
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8-byte alignment with spaces
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(struct.pack("<Q", len(header)) + header + blob[8 + size :])
    partial.replace(path)
    return path
