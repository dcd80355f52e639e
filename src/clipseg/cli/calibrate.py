"""``clipseg calibrate``: fit a model's presence calibration on a prepared val split, write a new model file.

The fit is ``clipseg.training.calibrate.calibrate``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipseg.core.help import HelpFormatter
from clipseg.training.calibrate import DEFAULT_LIMIT, calibrate, refresh_card


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipseg calibrate", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="zoo name or .safetensors model file")
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="a `clipseg prepare` output folder (its val split)"
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="model file to write (default: MODEL's name + '-calibrated.safetensors')",
    )
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help="val rows to use (default: %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out or f"{Path(args.model).stem}-calibrated.safetensors")
    try:
        calibration = calibrate(args.model, args.data, out, limit=args.limit)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"clipseg calibrate: error: {err}", file=sys.stderr)
        return 1
    head = calibration.head
    fitted = (
        "map features only" if head is None else f"head on 3 map + {len(head.weights) - 3} decoder features"
    )
    print(
        f"wrote {out} (presence calibration: {fitted}; map-only weights {[round(w, 3) for w in calibration.base.weights]})"
    )
    card = refresh_card(out)
    if card is not None:
        print(f"updated the card {card!r}: sha256 of the calibrated file")
    return 0
