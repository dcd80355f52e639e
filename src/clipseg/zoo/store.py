"""Where zoo files live and how they are checked: repo ``zoo/``, the HF cache (hub cards) or our cache; sha256 always."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from clipseg.zoo.cards import ModelCard
from clipseg.zoo.errors import ZooError
from clipseg.zoo.hub import cached_file, hub_digest, snapshot_file


def repo_zoo_dir() -> Path:
    """The ``zoo/`` folder shipped with the repository (override with ``CLIPSEG_ZOO``)."""
    return Path(os.environ.get("CLIPSEG_ZOO", Path(__file__).resolve().parents[3] / "zoo"))


def cache_dir() -> Path:
    """Original ``.pth`` files and their conversions (override with ``CLIPSEG_CACHE``; default ``~/.cache/clipseg``).

    Hub files never land here: they stay in the standard HF cache (``clipseg.zoo.hub``).
    """
    return Path(os.environ.get("CLIPSEG_CACHE", Path.home() / ".cache" / "clipseg"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pin_file(card: ModelCard, path: Path) -> Path:
    return cache_dir() / card.name / (path.name + ".sha256")


def expected_sha256(card: ModelCard, path: Path) -> tuple[str | None, str]:
    """The digest ``path`` must have, and where it comes from.

    The card's digest; else, for a file in the HF cache, the digest the hub published (its blob's
    name); else the one pinned at first use (``None`` before that).
    """
    if card.sha256:
        return card.sha256, "card digest"
    published = hub_digest(path)
    if published:
        return published, "the hub's published digest"
    pin = _pin_file(card, path)
    pinned = pin.read_text().strip() if pin.is_file() else None
    return pinned, "digest pinned at first use (no published digest)"


def verify(card: ModelCard, path: Path) -> str:
    """Check ``path`` against its expected sha256 (pinned at first use when there is none). Returns the digest."""
    actual = sha256_of(path)
    expected, _ = expected_sha256(card, path)
    if expected is None:
        pin = _pin_file(card, path)
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(actual + "\n")
        return actual
    if actual != expected:
        raise ZooError(
            f"{card.name}: sha256 mismatch for {path}: expected {expected}, got {actual}. "
            "The file is corrupt or was tampered with; delete it and fetch it again."
        )
    return actual


def local_file(card: ModelCard) -> Path | None:
    """The card's weights file if it is on this machine: the repo zoo, the HF cache (hub cards) or our cache."""
    if card.hf_repo is not None:
        return cached_file(card.hf_repo, card.revision, filename=card.filename)
    assert card.filename is not None  # ModelCard allows None only for hub cards
    for folder in (repo_zoo_dir(), cache_dir() / card.name):
        if (folder / card.filename).is_file():
            return folder / card.filename
    return None


def fetch(card: ModelCard, revision: str | None = None) -> Path:
    """The card's weights file; hub cards resolve through the HF cache (downloaded unless offline).

    ``revision`` overrides the card's own (hub cards only).
    """
    if card.hf_repo is not None:
        return snapshot_file(card.hf_repo, revision or card.revision, filename=card.filename)
    if revision is not None:
        raise ZooError(f"{card.name}: --revision applies to hub models only; this one is not on the hub")
    found = local_file(card)
    if found is not None:
        return found
    where = cache_dir() / card.name
    raise ZooError(
        f"{card.name}: {card.filename} is not in {repo_zoo_dir()} or {where}. "
        f"Get it from {card.source} and put it in {where}/"
    )
