"""The model zoo: ``list_models()`` and ``load_model(name_or_path)``.

Resolution order for a name: the file shipped with the package (``zoo/``) → the local cache → the hub
(``hf_hub_download``, honours ``HF_HUB_OFFLINE``) → a clear error saying what to download and where
to put it. Every file's sha256 is verified before it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.core.files import looks_like_path
from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.store import ZooError, fetch, repo_zoo_dir, verify

if TYPE_CHECKING:
    from clipseg.inference import Predictor
    from clipseg.zoo.loaders import Loaded

__all__ = ["ModelCard", "ZooError", "cards", "get_card", "list_models", "load_model", "load_weights"]


def cards() -> dict[str, ModelCard]:
    """Every card of ``zoo/cards.json`` (read each time, so an export is seen at once)."""
    return read_cards(repo_zoo_dir() / "cards.json")


def list_models() -> list[str]:
    """Names of every model card, shipped or downloadable."""
    return list(cards())


def get_card(name: str) -> ModelCard:
    known = cards()
    if name not in known:
        raise ZooError(
            f"unknown model {name!r}; known models: {', '.join(known)} (or pass a checkpoint path)"
        )
    return known[name]


def load_weights(name_or_path: str | Path) -> Loaded:
    """The ``ClipSeg`` model (on the CPU) and tokenizer of a zoo name or a checkpoint path, verified."""
    # Imported here: reading cards (list, verify, fetch) must work without torch.
    from clipseg.zoo.loaders import load_card_file, load_path

    if looks_like_path(name_or_path):
        return load_path(Path(name_or_path))
    card = get_card(str(name_or_path))
    path = fetch(card)
    verify(card, path)
    return load_card_file(card, path)


def load_model(name_or_path: str | Path, device: str | None = None) -> Predictor:
    """A ``Predictor`` for a zoo name or a checkpoint path (our safetensors, CIDAS folder, original ``.pth``).

    ``device``: "cpu", "cuda", "cuda:1", ... (default: cuda if available).
    """
    from clipseg.backends.torch import TorchBackend
    from clipseg.inference import Predictor

    model, tokenizer = load_weights(name_or_path)
    name = str(name_or_path)
    return Predictor(TorchBackend(model, tokenizer, device=device), name=name)
