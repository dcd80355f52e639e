"""Masking on a Ray cluster (``pip install 'clipseg[ray]'``; docs/scale-out.md).

- ``Segmenter``: a callable class for ``ray.data.Dataset.map_batches``: one model per actor, COCO
  RLE masks per row.
- ``RayEngine``: ``clipseg predict --engine ray``: the local engine's run (``inference.runs``) with the
  masking and writing (``BulkMasker.outcomes``) spread over Ray actors.
"""

try:
    import ray.data  # noqa: F401  (the extra's check: one line, before anything else fails deeper)
except ModuleNotFoundError as err:
    if (err.name or "").partition(".")[0] != "ray":
        raise
    raise ModuleNotFoundError(
        "clipseg.ray needs ray, which is not installed: pip install 'clipseg[ray]'", name="ray"
    ) from None

from clipseg.ray.engine import RayEngine
from clipseg.ray.segmenter import Segmenter

__all__ = ["RayEngine", "Segmenter"]
