"""``clipseg eval-all``: every local zoo model on every local benchmark (``clipseg.eval.eval_all``)."""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from clipseg.core.help import DEVICE_HELP, HelpFormatter, hidden_alias
from clipseg.eval import eval_all
from clipseg.eval.benchmarks import BENCHMARKS
from clipseg.eval.report import published_refmatte_table


def main(argv: list[str] | None = None) -> int:
    """``clipseg eval-all [--out results] [--data-root DIR] [--models ...] [--benchmarks ...] [--limit N]``."""
    parser = argparse.ArgumentParser(
        prog="clipseg eval-all",
        description="Evaluate every local zoo model (or --models) on every benchmark with prepared data; "
        "writes DIR/eval-all.md and DIR/eval-all.json.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results"), metavar="DIR", help="folder of eval-all.md / .json"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("CLIPSEG_DATA", "data")),
        metavar="DIR",
        help="prepared benchmarks (default $CLIPSEG_DATA or ./data)",
    )
    parser.add_argument(
        "--models",
        nargs="*",
        metavar="MODEL",
        help="only these: zoo names, model files or `clipseg fit` .ckpt files",
    )
    parser.add_argument("--benchmarks", nargs="*", choices=[b.name for b in BENCHMARKS], help="only these")
    parser.add_argument(
        "--limit", type=int, metavar="N", help="at most this many batches per benchmark (quick checks)"
    )
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per batch")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="data loader processes")
    hidden_alias(parser, "--num-workers", "--workers", type=int)  # the spelling of earlier versions
    parser.add_argument("--device", help=DEVICE_HELP)
    args = parser.parse_args(argv)

    models, paper = eval_all.zoo_models()
    if args.models:
        try:
            models = eval_all.select_models(models, args.models)
        except ValueError as err:
            parser.exit(2, f"clipseg eval-all: error: {err}\n")
    benchmarks = [b for b in BENCHMARKS if not args.benchmarks or b.name in args.benchmarks]
    report = eval_all.run_eval_all(
        models,
        data_root=args.data_root,
        benchmarks=benchmarks,
        batch_size=args.batch_size,
        num_workers=args.workers,
        limit=args.limit,
        device=args.device,
    )
    header = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M')}, host: {platform.node()}, torch {torch.__version__}",
        f"- data root: `{args.data_root}`"
        + (f", at most {args.limit} batches per benchmark" if args.limit else ""),
        "- IoU and AP in %, matting errors as in RefMatte (SAD / 1000 per image); paper numbers in parentheses.",
    ]
    markdown = eval_all.write_report(report, paper, args.out, header)
    print("\n".join(published_refmatte_table()))  # what to compare RefMatte with, data or not
    print(f"wrote {markdown}")
    return 0
