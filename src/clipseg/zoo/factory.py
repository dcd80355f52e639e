"""``load_model``: a ``Predictor`` over the torch or the onnx backend for any name, path or repo id."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.zoo.weights import load_resolved, resolve_weights

if TYPE_CHECKING:
    from clipseg.inference import Predictor
    from clipseg.inference.presence import Calibration


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
