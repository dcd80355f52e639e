"""The model zoo: ``list_models()`` and ``load_model(name_or_path_or_repo_id, revision=None)``.

A zoo name resolves to the file shipped with the package (``zoo/``), or through the standard HF
cache for hub cards (downloaded there unless ``HF_HUB_OFFLINE``), or to an original ``.pth`` put in
our cache; otherwise a clear error says what to download and where to put it. Every zoo file's
sha256 is verified before it is loaded. Hub repo ids (``org/name``) load through the same HF cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.hub import kind_of, snapshot_file
from clipseg.zoo.store import ZooError, fetch, repo_zoo_dir, verify

if TYPE_CHECKING:
    from clipseg.inference import Predictor
    from clipseg.zoo.loaders import Loaded

__all__ = [
    "BACKENDS",
    "ModelCard",
    "ZooError",
    "cards",
    "get_card",
    "list_models",
    "load_model",
    "load_weights",
]


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


def load_weights(name_or_path: str | Path, revision: str | None = None) -> Loaded:
    """The ``ClipSeg`` model (on the CPU) and tokenizer of a zoo name, a checkpoint path or a hub repo id.

    See ``load_model`` for the arguments. Zoo files are verified (sha256) before they are loaded.
    """
    # Imported here: reading cards (list, verify, fetch) must work without torch.
    from clipseg.zoo.loaders import load_card_file, load_path, load_weights_file

    kind = kind_of(name_or_path, cards())
    if kind == "hub":
        return load_weights_file(snapshot_file(str(name_or_path), revision))
    if kind == "zoo":
        card = get_card(str(name_or_path))
        path = fetch(card, revision)
        verify(card, path)
        return load_card_file(card, path)
    if revision is not None:
        raise ZooError(f"{name_or_path}: a revision applies to hub repo ids and hub zoo models, not to paths")
    return load_path(Path(name_or_path))


BACKENDS = ("torch", "onnx")


def load_model(
    name_or_path: str | Path,
    revision: str | None = None,
    device: str | None = None,
    backend: str | None = None,
) -> Predictor:
    """A ``Predictor`` for a zoo name, a checkpoint path, a Hugging Face Hub repo id or an ONNX export folder.

    Args:
        name_or_path: a zoo name (``shapes-tiny``), a path (our safetensors file or folder, a
            transformers CLIPSeg folder, an original ``.pth``, a ``clipseg export onnx`` folder) or a
            hub repo id ``org/name`` (the transformers CLIPSeg layout or this project's safetensors),
            loaded through the standard HF cache and usable offline from it. An existing path always
            wins; see ``clipseg.zoo.hub`` for the exact rule.
        revision: hub branch, tag or commit (repo ids and hub zoo cards; default: the card's pinned
            revision, else ``main``).
        device: "cpu", "cuda", "cuda:1", ... (default: cuda if available; torch backend only).
        backend: "torch" or "onnx" (onnxruntime, no torch imported; see ``clipseg.zoo.onnx``).
            Default: "onnx" for an ONNX export folder, else "torch". A name or weights path with
            "onnx" is exported once into the cache (``clipseg export onnx``, which needs torch).
    """
    from clipseg.backends.onnx import is_export_folder
    from clipseg.inference import Predictor

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")
    name = f"{name_or_path}@{revision}" if revision else str(name_or_path)
    if backend == "onnx" or (backend is None and is_export_folder(name_or_path)):
        if device not in (None, "cpu"):
            raise ValueError(
                f"device {device!r}: the onnx backend runs on onnxruntime's CPU provider; use cpu"
            )
        from clipseg.zoo.onnx import onnx_backend

        return Predictor(onnx_backend(name_or_path, revision, cards()), name=name)
    if is_export_folder(name_or_path):
        raise ValueError(f"{name_or_path} is an ONNX export: load it with backend='onnx' (or no backend)")
    from clipseg.backends.torch import TorchBackend

    model, tokenizer = load_weights(name_or_path, revision)
    return Predictor(TorchBackend(model, tokenizer, device=device), name=name)
