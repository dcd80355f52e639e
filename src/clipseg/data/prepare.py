"""``clipseg prepare``: convert a raw dataset into parquet shards of ``SHARD_FEATURES`` rows.

Layout written under ``out``::

    <split>/shard-00000.parquet ...   rows in reader order, ``shard_size`` rows per file
    <split>/manifest.json             dataset, source, options, shard files with row counts, skipped rows
    skipped.json                      {split: [{"sample_id", "reason"}]}: every row that was not written

Idempotent: a split whose manifest matches (same dataset, source and options, every listed shard present
with its row count) is left alone. Shards and manifests are written to a temporary name and renamed, so
an interrupted run never leaves a file that looks complete; the manifest is written last.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from clipseg.core.files import atomic_write, atomic_write_text
from clipseg.data.paths import prepared_dir
from clipseg.data.schema import SHARD_FEATURES, BadSample

# dataset name -> (reader "module:function", fixed reader options, default splits). Imported lazily
# so that converting one dataset never imports the others.
READERS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "phrasecut": ("clipseg.data.phrasecut:iter_rows", {}, ("train", "val", "test")),
    "pascal5i": ("clipseg.data.fewshot:iter_rows", {"benchmark": "pascal5i"}, ("train", "test")),
    "coco20i": ("clipseg.data.fewshot:iter_rows", {"benchmark": "coco20i"}, ("train", "test")),
    "pascal-zeroshot": ("clipseg.data.zeroshot:iter_rows", {}, ("val",)),
    "refmatte": ("clipseg.data.refmatte:iter_rows", {}, ("test",)),
    "shapes": ("clipseg.data.shapes.scenes:iter_rows", {}, ("val", "test")),
    "folder": ("clipseg.data.folder:iter_rows", {}, ("train", "val")),
    "coco": ("clipseg.data.coco:iter_rows", {}, ("train", "val")),
}
NEEDS_NO_SOURCE = frozenset({"shapes"})
ROW_GROUP_SIZE = 64  # rows per parquet row group: the unit a streaming reader holds in memory
Reader = Callable[..., Iterator[dict[str, Any] | BadSample]]


def load_reader(dataset: str) -> tuple[Reader, dict[str, Any], tuple[str, ...]]:
    """The reader function of ``dataset`` with its fixed options and default splits."""
    if dataset not in READERS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(READERS))}")
    target, fixed, splits = READERS[dataset]
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name), fixed, splits


def checked_options(
    dataset: str, reader: Reader, options: dict[str, Any], *, fixed: Collection[str] = ()
) -> dict[str, Any]:
    """``options`` checked against the keyword arguments ``reader`` takes, with its defaults filled in.

    Raises:
        ValueError: an option the reader does not take, named with the ones it does.
    """
    signature = inspect.signature(reader).parameters.values()
    params = {
        p.name: p.default
        for p in signature
        if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in ("src", "split", *fixed)
    }
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature)
    unknown = [] if takes_any else sorted(set(options) - set(params))
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise ValueError(
            f"--option {unknown[0]}: not an option of the {dataset} reader (its options: {known})"
        )
    defaults = {k: v for k, v in params.items() if v is not inspect.Parameter.empty}
    return {**defaults, **options}


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _is_complete(split_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of a finished conversion with this ``identity``, or ``None``."""
    try:
        manifest = json.loads((split_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if {k: manifest.get(k) for k in identity} != identity:
        return None
    for shard in manifest["shards"]:
        path = split_dir / shard["file"]
        if not path.is_file() or pq.ParquetFile(path).metadata.num_rows != shard["rows"]:
            return None
    return manifest


class _ShardWriter:
    """Buffers rows and writes ``shard-NNNNN.parquet`` files of ``shard_size`` rows atomically."""

    def __init__(self, split_dir: Path, shard_size: int) -> None:
        self.split_dir, self.shard_size = split_dir, shard_size
        self.rows: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=SHARD_FEATURES.arrow_schema)
        name = f"shard-{len(self.shards):05d}.parquet"
        atomic_write(
            self.split_dir / name, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
        )
        self.shards.append({"file": name, "rows": len(self.rows)})
        self.rows = []


def _check_row(row: Any, split: str) -> None:
    """Readers must emit complete rows; a wrong one is a reader bug, so stop with its id."""
    if not isinstance(row, dict) or set(row) != set(SHARD_FEATURES):
        sample_id = row.get("sample_id", "?") if isinstance(row, dict) else "?"
        got = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(
            f"{split}/{sample_id}: reader row has columns {got}, expected {sorted(SHARD_FEATURES)}"
        )


def _convert_split(
    reader: Reader, src: Path | None, split: str, split_dir: Path, shard_size: int, options: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Write the shards of one split; returns (shards, skipped rows)."""
    # Before touching the folder: a reader that checks its input when called (a CSV without a needed
    # column) stops here, and an earlier conversion stays as it was.
    rows = reader(src, split, **options)
    split_dir.mkdir(parents=True, exist_ok=True)
    for stale in [
        *split_dir.glob("shard-*.parquet"),
        *split_dir.glob(".*.tmp-*"),
        split_dir / "manifest.json",
    ]:
        stale.unlink(missing_ok=True)
    writer = _ShardWriter(split_dir, shard_size)
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    # A reader may return a sized iterable: tqdm then shows the total.
    with tqdm(rows, desc=split, unit=" samples", dynamic_ncols=True) as progress:
        for item in progress:
            if isinstance(item, BadSample):
                skipped.append({"sample_id": item.sample_id, "reason": item.reason})
                progress.set_postfix(skipped=len(skipped))
                continue
            _check_row(item, split)
            if item["sample_id"] in seen:
                skipped.append({"sample_id": item["sample_id"], "reason": "duplicate sample_id in the split"})
                continue
            seen.add(item["sample_id"])
            writer.add(item)
    writer.flush()
    return writer.shards, skipped


def prepare(
    dataset: str,
    src: str | Path | None,
    out: str | Path | None = None,
    splits: Sequence[str] | None = None,
    shard_size: int = 1000,
    options: dict[str, Any] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Convert ``dataset`` (raw files under ``src``) into shards under ``out``.

    Args:
        dataset: a key of ``READERS`` ("phrasecut", "pascal5i", "coco20i", "pascal-zeroshot",
            "refmatte", "shapes", and users' own data: "folder", "coco").
        src: the raw dataset folder (``None`` for "shapes").
        out: output folder (``out/<split>/shard-*.parquet``); default: where the configs and
            ``eval-all`` read it (``clipseg.data.paths.prepared_dir``, below ``$CLIPSEG_DATA``).
        splits: splits to convert (default: the dataset's usual ones).
        shard_size: rows per shard file; use at least ranks × workers shards per split.
        options: extra reader keyword arguments (e.g. ``{"fold": 1}`` for few-shot).
        workers: processes that read and encode rows, for readers that can use them ("folder",
            "coco"); not part of what makes a conversion up to date.

    Returns:
        ``{"dataset", "out", "splits": {split: {"rows", "shards", "skipped", "reused"}}}``; every
        skipped row is listed with its reason in ``out/skipped.json``.
    """
    reader, fixed, default_splits = load_reader(dataset)
    if src is None and dataset not in NEEDS_NO_SOURCE:
        raise ValueError(f"preparing {dataset!r} needs --src, the folder of the raw dataset")
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    src_path = None if src is None else Path(src)
    if src_path is not None and not src_path.exists():
        raise FileNotFoundError(f"raw dataset folder {src_path} does not exist")
    with_defaults = {**fixed, **checked_options(dataset, reader, options or {}, fixed=fixed)}
    reader_options = {**fixed, **(options or {})}
    run_options = dict(reader_options)
    if "workers" in inspect.signature(reader).parameters:
        run_options["workers"] = workers
    digest = getattr(importlib.import_module(reader.__module__), "source_digest", None)
    out = Path(out) if out is not None else prepared_dir(dataset, with_defaults, splits=splits)
    report: dict[str, Any] = {"dataset": dataset, "out": str(out), "splits": {}}
    try:  # keep the entries of splits converted by earlier runs
        all_skipped: dict[str, list[dict[str, str]]] = json.loads((out / "skipped.json").read_text())
    except (OSError, json.JSONDecodeError):
        all_skipped = {}
    for split in splits or default_splits:
        split_dir = out / split
        identity = {
            "dataset": dataset,
            "split": split,
            "source": None if src_path is None else str(src_path.resolve()),
            "options": json.loads(json.dumps(reader_options, default=str)),
            "shard_size": shard_size,
        }
        if digest is not None:  # an edited annotation file makes the conversion stale
            identity["source_digest"] = digest(src_path, **reader_options)
        manifest = _is_complete(split_dir, identity)
        reused = manifest is not None
        if manifest is None:
            shards, skipped = _convert_split(reader, src_path, split, split_dir, shard_size, run_options)
            manifest = {
                **identity,
                "shards": shards,
                "rows": sum(s["rows"] for s in shards),
                "skipped": skipped,
            }
            _write_json(split_dir / "manifest.json", manifest)
        all_skipped[split] = manifest["skipped"]
        report["splits"][split] = {
            "rows": manifest["rows"],
            "shards": len(manifest["shards"]),
            "skipped": len(manifest["skipped"]),
            "reused": reused,
        }
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "skipped.json", all_skipped)
    return report
