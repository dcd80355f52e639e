"""``clipseg calibrate``: fit a model's presence calibration on a prepared val split, write a new model file.

Each val sample gives one example: its own phrase, present when its mask is not empty (see
``calibration_examples`` for splits without empty masks). The calibration (``clipseg.inference.presence``) is stored in the
model file's metadata; tensors and every other metadata entry are copied unchanged. Written over a
shipped model file (``zoo/``), its card's sha256 and size follow (``refresh_card``), so
``make zoo-shapes-tiny`` calibrates the shipped file in one step.
"""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from safetensors import safe_open

from clipseg.core.files import sha256_of
from clipseg.data.streaming import decode_row, shard_files
from clipseg.inference import Predictor
from clipseg.inference.presence import PRESENCE_META, Calibration, fit_calibration
from clipseg.modeling.safetensors_io import save_safetensors

# Enough scenes for the 3-feature map logistic. The head (3 + 3 x the decoder width features) gains
# from more, with hard negatives among them: shapes-tiny's is fitted on 4000 (make calibrate-shapes-tiny).
DEFAULT_LIMIT = 400


def prepared_samples(
    data_dir: str | Path, split: str = "val", limit: int = DEFAULT_LIMIT
) -> Iterator[tuple[np.ndarray, str, bool]]:
    """``(image H x W x 3 uint8, phrase, mask not empty)`` of up to ``limit`` rows of a prepared split."""
    files = sorted(glob.glob(shard_files(str(data_dir), split)))
    if not files:
        raise FileNotFoundError(
            f"{data_dir}: no {split} shards (expected {split}/*.parquet from `clipseg prepare`)"
        )
    count = 0
    for path in files:
        for row in pq.read_table(path).to_pylist():
            sample, _ = decode_row(row)
            yield sample["image"], sample["text"], bool(sample["mask"].any())
            count += 1
            if count >= limit:
                return


def calibration_examples(
    predictor: Predictor, samples: Iterable[tuple[np.ndarray, str, bool]]
) -> tuple[list[np.ndarray], list[bool], list[np.ndarray] | None]:
    """``H x W`` probability maps of each sample's own phrase, whether its mask is not empty, and the
    decoder's ``3R`` summary of each (None where the backend gives none).

    Val splits with negative queries (empty masks, e.g. shapes) give clean absent examples. A split
    without any takes the previous sample's phrase as an absent prompt instead, which is only
    mostly true (the other phrase may name something in this image too).
    """
    rows = list(samples)
    present = [has_object for _, _, has_object in rows]
    asked = [(image, text) for image, text, _ in rows]
    if all(present):
        asked += [(image, prev) for (image, text, _), (_, prev, _) in zip(rows[1:], rows) if prev != text]
        present += [False] * (len(asked) - len(rows))
    results = [predictor.predict_pooled(image, [text], pooled=True) for image, text in asked]
    maps = [probs[0] for probs, _ in results]
    if any(pooled is None for _, pooled in results):
        return maps, present, None
    return maps, present, [pooled[0] for _, pooled in results]


def write_calibration(model: str | Path, calibration: Calibration, out: str | Path) -> Path:
    """Copy the safetensors ``model`` to ``out`` with ``calibration`` in its metadata (nothing else changes)."""
    with safe_open(str(model), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - safe_open is not iterable
    return save_safetensors(tensors, out, metadata=metadata | {PRESENCE_META: calibration.to_json()})


def calibrate(
    model: str | Path, data_dir: str | Path, out: str | Path, *, limit: int = DEFAULT_LIMIT
) -> Calibration:
    """Fit the presence calibration of the safetensors ``model`` on ``data_dir``'s val split; write ``out``."""
    from clipseg.zoo import load_model, resolve_weights

    path = resolve_weights(model).path
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: calibrate writes this project's .safetensors model files only")
    maps, present, pooled = calibration_examples(
        load_model(path, device="cpu"), prepared_samples(data_dir, limit=limit)
    )
    calibration = fit_calibration(maps, present, pooled=pooled)
    write_calibration(path, calibration, out)
    return calibration


def refresh_card(out: Path) -> str | None:
    """When ``out`` is a shipped model file (in ``repo_zoo_dir()``), its card's sha256 and size follow
    the new file; the measured numbers stay (the weights, so the masks, are unchanged). Returns the
    card's name, or None for any other file."""
    from clipseg.zoo import cards
    from clipseg.zoo.cards import write_cards
    from clipseg.zoo.store import repo_zoo_dir

    if out.resolve().parent != repo_zoo_dir().resolve():
        return None
    known = cards()
    name = next((name for name, card in known.items() if card.filename == out.name), None)
    if name is None:
        return None
    size_mb = round(out.stat().st_size / 1e6, 2)
    known[name] = dataclasses.replace(known[name], sha256=sha256_of(out), size_mb=size_mb)
    write_cards(repo_zoo_dir() / "cards.json", known)
    return name
