"""Where zoo files live and how they are checked: shipped ``zoo/`` → local cache → hub, sha256 always."""

from __future__ import annotations

import os
from pathlib import Path

from clipseg.core.files import atomic_write_text, sha256_of
from clipseg.zoo.cards import ModelCard

# The cards and the shipped model are package data (so a wheel install has them); the repository's
# top-level `zoo` is a link to this folder.
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


class ZooError(RuntimeError):
    """A model that cannot be resolved or verified; the message says what to do."""


def repo_zoo_dir() -> Path:
    """The folder of ``cards.json`` and the shipped models (``SHIPPED_DIR``; override with ``CLIPSEG_ZOO``)."""
    return Path(os.environ.get("CLIPSEG_ZOO", SHIPPED_DIR))


def cache_dir() -> Path:
    """Downloaded and converted models (override with ``CLIPSEG_CACHE``; default ``~/.cache/clipseg``)."""
    return Path(os.environ.get("CLIPSEG_CACHE", Path.home() / ".cache" / "clipseg"))


def _pin_file(card: ModelCard) -> Path:
    return cache_dir() / card.name / (card.filename + ".sha256")


def expected_sha256(card: ModelCard) -> str | None:
    """The card's digest, or the one pinned at first download for cards without a published digest."""
    if card.sha256:
        return card.sha256
    pin = _pin_file(card)
    return pin.read_text().strip() if pin.is_file() else None


def verify(card: ModelCard, path: Path) -> str:
    """Check ``path`` against the card's sha256; pin the digest when the card has none. Returns the digest."""
    actual = sha256_of(path)
    expected = expected_sha256(card)
    if expected is None:
        pin = _pin_file(card)
        pin.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(pin, actual + "\n")
        return actual
    if actual != expected:
        raise ZooError(
            f"{card.name}: sha256 mismatch for {path}: expected {expected}, got {actual}. "
            "The file is corrupt or was tampered with; delete it and fetch it again."
        )
    return actual


def local_file(card: ModelCard) -> Path | None:
    """The card's file in the repo zoo or the cache, if present."""
    for folder in (repo_zoo_dir(), cache_dir() / card.name):
        if (folder / card.filename).is_file():
            return folder / card.filename
    return None


def fetch(card: ModelCard) -> Path:
    """The card's weights file, downloaded with ``hf_hub_download`` if not local (honours ``HF_HUB_OFFLINE``)."""
    found = local_file(card)
    if found is not None:
        return found
    where = cache_dir() / card.name
    if card.hf_repo is None:
        raise ZooError(
            f"{card.name}: {card.filename} is not in {repo_zoo_dir()} or {where}. "
            f"Get it from {card.source} and put it in {where}/"
        )
    from huggingface_hub import hf_hub_download

    try:
        for extra in (*card.hf_files, card.filename):
            hf_hub_download(card.hf_repo, extra, local_dir=where)
    except Exception as err:  # offline, no network, 404: all end in the same advice
        raise ZooError(
            f"{card.name}: cannot download {card.filename} from the hub repo {card.hf_repo} "
            f"({type(err).__name__}). Download {', '.join((card.filename, *card.hf_files))} from "
            f"{card.source} and put them in {where}/"
        ) from None
    return where / card.filename
