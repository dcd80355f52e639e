"""The model zoo: ``list_models()`` and ``load_model(name_or_path_or_repo_id, revision=None)``.

A zoo name resolves to the file shipped with the package (``zoo/``), or through the standard HF
cache for hub cards (downloaded there unless ``HF_HUB_OFFLINE``), or to an original ``.pth`` put in
our cache; otherwise a clear error says what to download and where to put it. Every zoo file's
sha256 is verified before it is loaded. Hub repo ids (``org/name``) load through the same HF cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.core.files import sha256_of
from clipseg.zoo.cards import ModelCard, read_cards
from clipseg.zoo.hub import choose_weights, kind_of, snapshot_file
from clipseg.zoo.store import ZooError, fetch, repo_zoo_dir, verify

if TYPE_CHECKING:
    from clipseg.inference import Predictor
    from clipseg.inference.presence import Calibration
    from clipseg.zoo.loaders import Loaded

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


BACKENDS = ("torch", "onnx")


def load_model(
    name_or_path: str | Path,
    revision: str | None = None,
    device: str | None = None,
    backend: str | None = None,
    quantize: str | None = None,
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
        quantize: ``"int8"`` (onnx backend only): the int8 export, made once into the cache too.
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
        from clipseg.inference.presence import Calibration
        from clipseg.zoo.onnx import onnx_backend

        onnx = Predictor(onnx_backend(name_or_path, revision, quantize), name=name)
        presence = onnx.backend.layout.presence  # the exported file's calibration, carried by the export
        onnx.calibration = Calibration.from_json(presence) if presence else None
        return onnx
    if quantize is not None:
        raise ValueError(f"quantize {quantize!r} runs on onnxruntime: use backend='onnx'")
    if is_export_folder(name_or_path):
        raise ValueError(f"{name_or_path} is an ONNX export: load it with backend='onnx' (or no backend)")
    from clipseg.backends.torch import TorchBackend

    weights = resolve_weights(name_or_path, revision)
    model, tokenizer = load_resolved(weights)
    predictor = Predictor(TorchBackend(model, tokenizer, device=device), name=name)
    predictor.calibration = read_file_calibration(weights.path)
    return predictor


def read_file_calibration(path: Path) -> Calibration | None:
    """The presence calibration stored in a safetensors model file's metadata (None for other files)."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    from clipseg.inference.presence import read_calibration

    with safe_open(str(path), framework="numpy") as handle:
        return read_calibration(handle.metadata())
