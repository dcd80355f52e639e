"""The model zoo: ``list_models()`` and ``load_model(name_or_path_or_repo_id, revision=None)``.

A zoo name resolves to the file shipped with the package (``zoo/``), or through the standard HF
cache for hub cards (downloaded there unless ``HF_HUB_OFFLINE``), or to an original ``.pth`` put in
our cache; otherwise a clear error says what to download and where to put it. Every zoo file's
sha256 is verified before it is loaded. Hub repo ids (``org/name``) load through the same HF cache.
"""

from __future__ import annotations

from clipseg.zoo.cards import ModelCard
from clipseg.zoo.catalog import cards, get_card, list_models
from clipseg.zoo.factory import BACKENDS, load_model
from clipseg.zoo.store import ZooError
from clipseg.zoo.weights import WeightsFile, load_resolved, load_weights, resolve_weights

__all__ = [
    "BACKENDS",
    "ModelCard",
    "WeightsFile",
    "ZooError",
    "cards",
    "get_card",
    "list_models",
    "load_model",
    "load_resolved",
    "load_weights",
    "resolve_weights",
]
