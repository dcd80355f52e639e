"""``clipseg prepare <dataset> --src RAW_DIR [--out DIR]``: a raw dataset to parquet shards
(``clipseg.data.prepare``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from clipseg.core.help import HelpFormatter
from clipseg.data.paths import PREPARED_DIRS
from clipseg.data.prepare import READERS, prepare

SHOWN_SKIPPED = 5  # skipped rows whose reasons the CLI prints (all are in skipped.json)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def prepare_main(argv: list[str] | None = None) -> int:
    """``clipseg prepare <dataset> --src RAW_DIR [--out DIR]``; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="clipseg prepare",
        description="Convert a raw dataset into parquet shards (idempotent; skipped samples in skipped.json).",
        epilog="Without --out the shards go where the configs and `clipseg eval-all` read them: "
        + ", ".join(
            f"{name}: $CLIPSEG_DATA/{folder}" for name, folder in PREPARED_DIRS.items() if name != "shapes"
        )
        + " ($CLIPSEG_DATA defaults to ./data).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("dataset", choices=sorted(READERS), help="the raw dataset's format")
    parser.add_argument(
        "--src", type=Path, metavar="DIR", help="folder of the raw dataset (not needed for shapes)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default: the dataset's folder below $CLIPSEG_DATA)",
    )
    parser.add_argument(
        "--splits", nargs="+", metavar="SPLIT", help="splits to convert (default: the dataset's usual splits)"
    )
    parser.add_argument("--shard-size", type=int, default=1000, metavar="N", help="rows per shard file")
    parser.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="coco: the folder of the images (file_name is relative to it)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes reading images and masks (folder, coco)",
    )
    parser.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option, e.g. fold=1 (pascal5i, coco20i), setting=keyword (refmatte) or "
        "hard_absent_prob=0.7 (shapes: that share of the absent prompts names a missing shape in a "
        "colour the scene has, the hard negatives a presence head is fitted on)",
    )
    args = parser.parse_args(argv)
    options = dict(args.option)
    if args.images is not None:
        options["images"] = str(args.images)
    try:
        report = prepare(
            args.dataset, args.src, args.out, args.splits, args.shard_size, options, args.workers
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"clipseg prepare: error: {err}", file=sys.stderr)
        return 2
    for split, info in report["splits"].items():
        status = "up to date" if info["reused"] else "written"
        print(
            f"{split}: {info['rows']} rows in {info['shards']} shards ({status}); {info['skipped']} skipped"
        )
    print(f"shards in {report['out']}")
    if any(info["skipped"] for info in report["splits"].values()):
        listing = Path(report["out"]) / "skipped.json"
        skipped = [entry for entries in json.loads(listing.read_text()).values() for entry in entries]
        for entry in skipped[:SHOWN_SKIPPED]:
            print(f"  skipped {entry['sample_id']}: {entry['reason']}")
        more = f" ({len(skipped) - SHOWN_SKIPPED} more)" if len(skipped) > SHOWN_SKIPPED else ""
        print(f"every skipped row and its reason{more}: {listing}")
    return 0
