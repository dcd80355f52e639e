"""Files written whole or not at all, their sha256, and reproducible safetensors headers."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path


def partial_name(path: Path) -> Path:
    """The temporary name ``.NAME.tmp-PID`` next to ``path`` under which it is written before the rename
    (``inference.writers.remove_partials`` recognises what a killed run left under it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``.

    An interrupted or failing write never leaves a half-written ``path`` (nor the temporary file).
    """
    path = Path(path)
    tmp = partial_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def sha256_of(path: str | Path) -> str:
    """Hex sha256 digest of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_safetensors_bytes(blob: bytes, path: str | Path) -> Path:
    """Write a serialized safetensors file (e.g. ``safetensors.torch.save(...)``) byte for byte reproducibly.

    safetensors writes its metadata in hash order, which changes from process to process, so one
    checkpoint packed twice got two sha256 digests (and zoo cards pin digests). Here the JSON header
    is rewritten with sorted keys; tensor offsets are explicit in it, so the data block is unchanged.
    The write is atomic.
    """
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8-byte alignment with spaces
    return atomic_write_bytes(path, struct.pack("<Q", len(header)) + header + blob[8 + size :])


def looks_like_path(value: str | Path) -> bool:
    """Whether ``value`` means a local file or folder rather than a name (zoo name, hub ``owner/name``).

    Names are ``name`` or ``owner/name``; anything that exists, is a ``Path``, starts like a path, has
    two slashes or more, a backslash, or a model-file suffix is a path.
    """
    text = str(value)
    return (
        isinstance(value, Path)
        or text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or "\\" in text
        or text.endswith((".safetensors", ".pth", ".bin"))
        or Path(text).expanduser().exists()
    )
