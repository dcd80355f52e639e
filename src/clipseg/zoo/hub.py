"""Hugging Face Hub repositories through the standard HF cache (``HF_HOME`` / ``HF_HUB_CACHE``).

``load_model`` tells the three kinds of names apart like this (``kind_of``):

1. a ``Path`` object, or a string naming a file or folder that exists, is a path;
2. otherwise a zoo card name (``shapes-tiny``, ``clipseg-rd64-refined``) is a zoo model;
3. otherwise ``org/name`` with exactly one ``/``, both parts of letters, digits, ``-``, ``_``, ``.``
   and starting with a letter or digit (so no leading ``.``, ``/`` or ``~``), and not ending in a
   checkpoint suffix (``.safetensors``, ``.pth``, ``.ckpt``, ...), is a hub repo id;
4. otherwise a plain name (no ``/`` or ``\\``, no checkpoint suffix) is an unknown zoo name (the
   error lists the known ones), and anything else a path that does not exist (the error says so).

So a local folder ``runs/best`` loads as a folder when it exists, and ``./runs/best`` is never a repo id.

Files land in the HF cache layout (``models--org--name/{blobs,refs,snapshots}``), shared with
transformers: a model already used through transformers is not downloaded again. Only the weights
file and the small ``*.json`` / ``*.txt`` files (configs, tokenizer) are fetched; of the weights,
``model.safetensors`` wins over ``pytorch_model.bin`` when a repository has both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from clipseg.core.hub_access import hub_command, hub_offline, network_errors
from clipseg.zoo.errors import ZooError

SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"
# Everything but the weights that a CLIPSeg repository needs: configs, image processor, tokenizer.
SIDE_FILE_PATTERNS = ("*.json", "*.txt")
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Kind = Literal["path", "zoo", "hub"]


def hub_cache_dir() -> Path:
    """The HF hub cache, read from the environment at call time (as ``huggingface_hub`` does at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def is_repo_id(text: str) -> bool:
    """Whether ``text`` has the shape of a hub repo id ``org/name`` (rule 3 of the module docstring)."""
    return (
        _REPO_ID.fullmatch(text) is not None
        and ".." not in text
        and not text.lower().endswith(CHECKPOINT_SUFFIXES)
    )


def kind_of(name_or_path: str | Path, zoo_names: Iterable[str]) -> Kind:
    """``path``, ``zoo`` or ``hub``: how ``load_model`` reads ``name_or_path`` (see the module docstring)."""
    if isinstance(name_or_path, Path) or Path(name_or_path).expanduser().exists():
        return "path"
    if name_or_path in set(zoo_names):
        return "zoo"
    if is_repo_id(name_or_path):
        return "hub"
    plain = not any(c in name_or_path for c in "/\\") and not name_or_path.lower().endswith(
        CHECKPOINT_SUFFIXES
    )
    return "zoo" if plain else "path"


def choose_weights(names: Iterable[str], *, where: str) -> str:
    """The weights file to load among a repository's or folder's top-level file names.

    ``model.safetensors``; else the only other ``*.safetensors`` (this project's files keep their
    packed name, e.g. ``shapes-tiny.safetensors``); else ``pytorch_model.bin`` (read with
    ``weights_only=True``).
    """
    top = sorted(n for n in names if "/" not in n)
    if SAFETENSORS_NAME in top:
        return SAFETENSORS_NAME
    safetensors = [n for n in top if n.endswith(".safetensors")]
    if len(safetensors) == 1:
        return safetensors[0]
    if safetensors:
        raise ZooError(
            f"{where}: several weights files ({', '.join(safetensors)}); keep one or name the file"
        )
    if PICKLE_NAME in top:
        return PICKLE_NAME
    raise ZooError(f"{where}: holds no {SAFETENSORS_NAME}, other .safetensors file or {PICKLE_NAME}")


def _label(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _remote_files(repo_id: str, revision: str | None) -> list[str] | None:
    """The repository's file names, or ``None`` when the hub cannot be reached (offline, no network, down)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return HfApi().list_repo_files(repo_id, revision=revision)
    except RevisionNotFoundError:
        raise ZooError(f"{repo_id}: the hub repository has no revision {revision!r}") from None
    except GatedRepoError:
        raise ZooError(
            f"{repo_id}: the hub repository is gated; accept its terms on huggingface.co and log in with "
            f"`{hub_command('auth login')}`"
        ) from None
    except RepositoryNotFoundError:
        raise ZooError(
            f"{repo_id}: no such hub repository (or it is private: log in with `{hub_command('auth login')}`), "
            "no such local file or folder, and not a zoo model name (`clipseg zoo list`)"
        ) from None
    except (*network_errors(), OfflineModeIsEnabled, HfHubHTTPError):
        return None  # no network, or the hub is down: the cache may still have it


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The snapshot folder of ``revision`` (default ``main``) in the HF cache, if there is one."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=True)
        )
    except LocalEntryNotFoundError:
        return None


def snapshot_file(repo_id: str, revision: str | None = None, *, filename: str | None = None) -> Path:
    """The weights file of hub repository ``repo_id`` inside its snapshot folder in the HF cache.

    Online, the repository's listing picks the weights file (``filename``, else ``choose_weights``),
    which is downloaded with the configs and tokenizer (only what the cache lacks). Offline
    (``HF_HUB_OFFLINE=1``, or no network) the cached snapshot of ``revision`` (default ``main``) is used.

    Raises:
        ZooError: unknown repository or revision, or offline and not in the cache (the message says
            which command fills the cache).
    """
    from huggingface_hub import snapshot_download

    label, cache = _label(repo_id, revision), hub_cache_dir()
    files = None if hub_offline() else _remote_files(repo_id, revision)
    if files is not None:
        chosen = filename or choose_weights(files, where=f"hub repository {label}")
        if chosen not in files:
            raise ZooError(f"hub repository {label} has no file {chosen}")
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache, allow_patterns=[chosen, *SIDE_FILE_PATTERNS]
        )
        return Path(folder) / chosen
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
    folder = _cached_snapshot(repo_id, revision)
    if folder is None:
        raise ZooError(
            f"{label} is not in the Hugging Face cache {cache} and {why}. On a machine with network run "
            f"`{hub_command(f'download {repo_id}')}` (and copy that cache or set HF_HOME), or unset HF_HUB_OFFLINE"
        )
    chosen = filename or choose_weights((p.name for p in folder.iterdir()), where=f"cached snapshot {folder}")
    if not (folder / chosen).is_file():
        raise ZooError(
            f"{label}: the cached snapshot {folder} lacks {chosen} and {why}; "
            f"run `{hub_command(f'download {repo_id} {chosen}')}`"
        )
    return folder / chosen


def cached_file(repo_id: str, revision: str | None = None, *, filename: str | None = None) -> Path | None:
    """The weights file ``snapshot_file`` would return offline, if the HF cache has it (never downloads)."""
    folder = _cached_snapshot(repo_id, revision)
    if folder is None:
        return None
    try:
        chosen = filename or choose_weights((p.name for p in folder.iterdir()), where=str(folder))
    except ZooError:
        return None
    return folder / chosen if (folder / chosen).is_file() else None


def hub_digest(path: Path) -> str | None:
    """The sha256 the hub published for a cached LFS file: the name of the blob its snapshot link points to.

    ``None`` for files outside the cache's ``blobs/`` and for small git-stored files (named by sha1).
    """
    blob = path.resolve()
    return blob.name if blob.parent.name == "blobs" and _SHA256.fullmatch(blob.name) else None
