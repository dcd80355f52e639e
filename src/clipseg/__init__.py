"""clipseg: image segmentation from text and image prompts (CLIPSeg, Lüddecke & Ecker, CVPR 2022)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Imports are lazy so that `import clipseg` (and the CLI's --help) stay fast.
_EXPORTS = {
    "BulkMasker": "clipseg.inference.bulk",
    "ClipSeg": "clipseg.modeling",
    "ClipSegConfig": "clipseg.core.config",
    "ImageEmbedding": "clipseg.inference",
    "MaskOptions": "clipseg.inference.bulk",
    "PreprocessConfig": "clipseg.core.config",
    "Prompt": "clipseg.core.prompts",
    "Predictor": "clipseg.inference",
    "load_model": "clipseg.zoo",
    "list_models": "clipseg.zoo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clipseg' has no attribute {name!r}")
