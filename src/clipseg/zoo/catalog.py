"""The zoo's model cards: ``cards()`` (``zoo/cards.json``, read each time), ``list_models()``, ``get_card()``."""

from __future__ import annotations

from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.store import ZooError, repo_zoo_dir


def cards() -> dict[str, ModelCard]:
    """Every card of ``zoo/cards.json`` (read each time, so a newly packed model is seen at once)."""
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
