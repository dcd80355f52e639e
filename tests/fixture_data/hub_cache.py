"""Hub repositories written straight into the Hugging Face cache layout, as downloads leave them.

``models--org--name/blobs/<hash>``: large (LFS) files are named by their sha256, as the hub
publishes it; small git files by their git blob sha1. ``snapshots/<commit>/<file>`` are relative
symlinks to the blobs, and ``refs/main`` holds the commit of ``main``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin")
# What the hub library raises when it cannot connect: before 1.0 it talks through requests, from 1.0 httpx.
HTTP_CLIENTS = {"requests": "ConnectionError", "httpx": "ConnectError"}


def connect_error(client: str) -> Exception:
    """``client``'s no-connection error (the test is skipped where that client is not installed)."""
    import pytest

    return getattr(pytest.importorskip(client), HTTP_CLIENTS[client])("no route to host")


def _blob_name(name: str, data: bytes) -> str:
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_hub_repo(cache: Path, repo_id: str, files: dict[str, bytes], *, ref: str | None = "main") -> Path:
    """Store ``files`` (name -> content) as one commit of ``repo_id`` in the HF cache ``cache``.

    Returns the snapshot folder; ``ref`` (e.g. ``main``) is pointed at the commit unless ``None``.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(b"".join(n.encode() + d for n, d in sorted(files.items()))).hexdigest()
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / _blob_name(name, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (name.count("/") + 2)) / "blobs" / blob.name)
    if ref is not None:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (e.g. a ``save_pretrained`` output) as name -> content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
