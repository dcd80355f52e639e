"""The model zoo: ``list_models()`` and ``load_model(name_or_path_or_repo_id, revision=None)``.

A zoo name resolves to the file shipped in the repo's ``zoo/``, or through the standard HF cache
for hub cards (downloaded there unless ``HF_HUB_OFFLINE``), or to an original ``.pth`` put in our
cache; otherwise a clear error says what to download and where to put it. Every zoo file's sha256
is verified before it is loaded. Hub repo ids (``org/name``) load through the same HF cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.hub import kind_of, snapshot_file
from clipseg.zoo.store import ZooError, fetch, repo_zoo_dir, verify

if TYPE_CHECKING:  # torch is imported only to load a model: reading cards stays fast
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


def load_model(
    name_or_path: str | Path, revision: str | None = None, device: str | torch.device | None = None
) -> Predictor:
    """A ``Predictor`` for a zoo name, a checkpoint path or a Hugging Face Hub repo id.

    Args:
        name_or_path: a zoo name (``shapes-tiny``), a path (our safetensors file or folder, a
            transformers CLIPSeg folder, an original ``.pth``) or a hub repo id ``org/name`` (the
            transformers CLIPSeg layout or this project's safetensors), loaded through the standard
            HF cache and usable offline from it. An existing path always wins; see
            ``clipseg.zoo.hub`` for the exact rule.
        revision: hub branch, tag or commit (repo ids and hub zoo cards; default: the card's pinned
            revision, else ``main``).
        device: where the model runs (default: cuda if available).
    """
    from clipseg.predict import Predictor
    from clipseg.zoo.loaders import load_card_file, load_path, load_weights_file

    kind = kind_of(name_or_path, cards())
    if kind == "hub":
        model, tokenizer = load_weights_file(snapshot_file(str(name_or_path), revision))
        name = f"{name_or_path}@{revision}" if revision else str(name_or_path)
        return Predictor(model, tokenizer, device=device, name=name)
    if kind == "zoo":
        card = get_card(str(name_or_path))
        path = fetch(card, revision)
        verify(card, path)
        model, tokenizer = load_card_file(card, path)
        return Predictor(model, tokenizer, device=device, name=card.name)
    if revision is not None:
        raise ZooError(f"{name_or_path}: a revision applies to hub repo ids and hub zoo models, not to paths")
    model, tokenizer = load_path(Path(name_or_path))
    return Predictor(model, tokenizer, device=device, name=str(name_or_path))
