"""The model zoo: ``list_models()`` and ``load_model(name_or_path)``.

Resolution order for a name: the file shipped in the repo's ``zoo/`` → the local cache → the hub
(``hf_hub_download``, honours ``HF_HUB_OFFLINE``) → a clear error saying what to download and where
to put it. Every file's sha256 is verified before it is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.store import ZooError, fetch, repo_zoo_dir, verify

if TYPE_CHECKING:  # torch is imported only to load a model: `clipseg zoo list` stays fast
    import torch

    from clipseg.predict import Predictor

__all__ = ["ModelCard", "ZooError", "cards", "get_card", "list_models", "load_model"]


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


def _looks_like_path(value: str | Path) -> bool:
    text = str(value)
    return (
        isinstance(value, Path)
        or "/" in text
        or text.endswith((".safetensors", ".pth"))
        or Path(text).exists()
    )


def load_model(name_or_path: str | Path, device: str | torch.device | None = None) -> Predictor:
    """A ``Predictor`` for a zoo name or a checkpoint path (our safetensors, CIDAS folder, original ``.pth``)."""
    from clipseg.predict import Predictor
    from clipseg.zoo.loaders import load_card_file, load_path

    if not _looks_like_path(name_or_path):
        card = get_card(str(name_or_path))
        path = fetch(card)
        verify(card, path)
        model, tokenizer = load_card_file(card, path)
        return Predictor(model, tokenizer, device=device, name=card.name)
    model, tokenizer = load_path(Path(name_or_path))
    return Predictor(model, tokenizer, device=device, name=str(name_or_path))
