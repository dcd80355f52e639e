"""The options stamp of bulk outputs: which run options made a file, read back without decoding it.

Every PNG that ``predict_folder`` writes carries the run's options as a ``clipseg`` text chunk (before
the pixels, so reading it costs the header only), npz files an ``options`` entry, COCO parts and video
folders a field / a small file. A rerun skips an input only when its stamp equals the new run's (an
earlier ``--combine union`` no longer stands for a later ``--combine intersection``), and a folder
or glob input never picks up a file that a run wrote (``--out`` may be the inputs' own folder).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from clipseg.core.prompts import as_prompt

STAMP_KEY = "clipseg"  # PNG text chunk, npz entry and JSON field
STAMP_FILE = ".clipseg-stamp"  # inside a video's output folder


def run_stamp(
    model: str,
    prompts: Sequence[Any],
    postprocess: Any,
    *,
    refine: str,
    tiles: bool,
    smooth: int,
    min_presence: float = 0.0,
) -> str:
    """The options that decide a mask's pixels, as compact JSON (support images by pixel digest)."""
    described = []
    for prompt in map(as_prompt, prompts):
        entry: dict[str, Any] = {"label": prompt.label}
        for part in ("image", "mask"):
            value = getattr(prompt, part)
            if value is not None:
                data = (
                    np.asarray(value).tobytes() if not isinstance(value, (str, Path)) else str(value).encode()
                )
                entry[part] = hashlib.sha256(data).hexdigest()[:16]
        described.append(entry)
    options = {
        "model": model,
        "prompts": described,
        "postprocess": asdict(postprocess),
        "refine": refine,
        "tiles": tiles,
        "smooth": smooth,
    }
    if min_presence:  # only when set, so the stamps of earlier runs still match
        options["min_presence"] = min_presence
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def read_stamp(path: Path) -> str | None:
    """The stamp of an output file (PNG, npz, COCO part JSON, a video folder's stamp file); None if none."""
    try:
        if path.suffix == ".png":
            with Image.open(path) as image:
                value = image.info.get(STAMP_KEY)  # text chunks before the pixels: no decoding
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                value = str(arrays[STAMP_KEY]) if STAMP_KEY in arrays.files else None
        elif path.suffix == ".json":
            records = json.loads(path.read_text())
            value = records[0].get(STAMP_KEY) if isinstance(records, list) and records else None
        else:
            value = path.read_text() if path.name == STAMP_FILE else None
    except (OSError, ValueError, KeyError, UnidentifiedImageError, zipfile.BadZipFile):
        return None
    return value if isinstance(value, str) else None
