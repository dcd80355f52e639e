"""``load_model(..., backend="onnx")``: an ONNX export folder, or a model exported once into our cache.

A zoo name, hub repo id or weights path is exported on first use by ``clipseg export onnx`` in a
child process (that needs torch; this process never imports it), into
``cache_dir()/onnx/<sha256 of the weights file>``, so a changed file gets a new export and an
unchanged one is reused, offline and without torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clipseg.backends.onnx import OnnxBackend, is_export_folder
from clipseg.zoo.store import ZooError, cache_dir
from clipseg.zoo.weights import WeightsFile, resolve_weights


def onnx_cache_folder(weights: WeightsFile, quantize: str | None = None) -> Path:
    """Where the ONNX export of ``weights`` is kept (``CLIPSEG_CACHE``/onnx/sha256, ``-int8`` quantized)."""
    return cache_dir() / "onnx" / (weights.digest() + (f"-{quantize}" if quantize else ""))


def export_in_child(
    name_or_path: str | Path, revision: str | None, out: Path, quantize: str | None = None
) -> None:
    """Run ``clipseg export onnx`` in a child process (torch is imported there, not here); its progress
    bar and error line go to this process's stderr.

    Raises:
        ZooError: the export failed.
    """
    command = [sys.executable, "-m", "clipseg.cli", "export", "onnx", "--model", str(name_or_path)]
    command += ["--out", str(out), *(["--revision", revision] if revision is not None else [])]
    command += ["--quantize", quantize] if quantize else []
    print(f"exporting {name_or_path} to ONNX once (needs torch) into {out}", file=sys.stderr)
    result = subprocess.run(command, stdout=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ZooError(f"ONNX export of {name_or_path} failed (its error is printed above)")


def onnx_backend(name_or_path: str | Path, revision: str | None, quantize: str | None = None) -> OnnxBackend:
    """An ``OnnxBackend`` for an export folder, or for a model exported (``quantize``: and quantized)
    into the cache on first use."""
    if is_export_folder(name_or_path):
        if revision is not None:
            raise ZooError(
                f"{name_or_path}: a revision applies to hub repo ids and hub zoo models, not to folders"
            )
        backend = OnnxBackend(name_or_path)
        if quantize is not None and backend.layout.quantize != quantize:
            raise ZooError(
                f"{name_or_path}: an export that is not {quantize}; export it with --quantize {quantize}"
            )
        return backend
    folder = onnx_cache_folder(resolve_weights(name_or_path, revision), quantize)
    if not is_export_folder(folder):
        export_in_child(name_or_path, revision, folder, quantize)
    return OnnxBackend(folder)
