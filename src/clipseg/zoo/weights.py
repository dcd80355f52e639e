"""Weight resolution: the one file a zoo name (fetched and sha256-verified), a hub repo id (through the
HF cache, downloaded there unless ``HF_HUB_OFFLINE``) or a path stands for, and loading it into a
``ClipSeg`` model and tokenizer. Resolving needs no torch; loading imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.core.files import sha256_of
from clipseg.zoo.cards import ModelCard
from clipseg.zoo.catalog import cards, get_card
from clipseg.zoo.hub import choose_weights, kind_of, snapshot_file
from clipseg.zoo.store import ZooError, fetch, verify

if TYPE_CHECKING:
    from clipseg.zoo.loaders import Loaded


@dataclass(frozen=True)
class WeightsFile:
    """The one file a zoo name, hub repo id or path stands for; ``card`` and ``sha256`` for zoo names
    (verified on resolving, so the digest is known)."""

    path: Path
    card: ModelCard | None = None
    sha256: str | None = None

    def digest(self) -> str:
        """The file's sha256 (hashed now unless resolving already did)."""
        return self.sha256 or sha256_of(self.path)


def resolve_weights(name_or_path: str | Path, revision: str | None = None) -> WeightsFile:
    """The weights file of a zoo name (fetched and verified), a hub repo id (through the HF cache) or a
    path (a folder: the weights file in it, as ``clipseg.zoo.hub.choose_weights`` picks). Needs no torch.
    """
    kind = kind_of(name_or_path, cards())
    if kind == "hub":
        return WeightsFile(snapshot_file(str(name_or_path), revision))
    if kind == "zoo":
        card = get_card(str(name_or_path))
        path = fetch(card, revision)
        return WeightsFile(path, card=card, sha256=verify(card, path))
    if revision is not None:
        raise ZooError(f"{name_or_path}: a revision applies to hub repo ids and hub zoo models, not to paths")
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder, not a zoo model name (`clipseg zoo list`) and not a hub "
            "repo id (org/name)"
        )
    if path.is_dir():
        path = path / choose_weights((p.name for p in path.iterdir()), where=str(path))
    return WeightsFile(path)


def load_resolved(weights: WeightsFile) -> Loaded:
    """The ``ClipSeg`` model (on the CPU) and tokenizer of a resolved weights file."""
    # Imported here: reading cards (list, verify, fetch) must work without torch.
    from clipseg.zoo.loaders import load_card_file, load_path

    return load_card_file(weights.card, weights.path) if weights.card else load_path(weights.path)


def load_weights(name_or_path: str | Path, revision: str | None = None) -> Loaded:
    """The ``ClipSeg`` model (on the CPU) and tokenizer of a zoo name, a checkpoint path or a hub repo id.

    See ``load_model`` for the arguments. Zoo files are verified (sha256) before they are loaded.
    """
    return load_resolved(resolve_weights(name_or_path, revision))
