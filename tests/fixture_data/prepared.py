"""Reading back what readers and ``clipseg prepare`` produce from the raw fixtures (row PNGs, streams)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png_array(data: bytes) -> np.ndarray:
    """A PNG column of a shard row (mask, support mask, label) as ``H x W`` uint8 values; must be mode L."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L", img.mode
        return np.asarray(img)


def prepare_and_stream(
    dataset: str, src: Path, out: Path, split: str, **options: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """Convert ``split`` of the raw dataset at ``src`` into shards under ``out`` and stream them back.

    Returns the split's report (rows, shards, skipped, reused), its ``skipped.json`` entries by sample id
    (reason) and the streamed ``Sample``s by sample id (decoded, no prompt policy, no transform).
    """
    from clipseg.data.prepare import prepare
    from clipseg.data.streaming import ShardStream

    report = prepare(dataset, src, out, splits=[split], shard_size=4, options=options)
    skipped = {s["sample_id"]: s["reason"] for s in json.loads((out / "skipped.json").read_text())[split]}
    samples = {s["sample_id"]: s for s in ShardStream(source=str(out), split=split)}
    return report["splits"][split], skipped, samples
