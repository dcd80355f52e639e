"""``clipseg export onnx --model MODEL --out DIR [--quantize int8]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipseg.core.help import REVISION_HELP, HelpFormatter


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipseg export", description="Export a model for other runtimes.", formatter_class=HelpFormatter
    )
    sub = p.add_subparsers(dest="format", required=True)
    onnx = sub.add_parser(
        "onnx",
        formatter_class=HelpFormatter,
        help="four ONNX graphs (vision, text, visual prompts, decoder) + tokenizer + config for onnxruntime",
        description="Write DIR/{vision,text,visual,decoder}.onnx, DIR/tokenizer and DIR/config.json; "
        "load it with clipseg.load_model(DIR) (onnxruntime, no torch). Each graph is checked in "
        "onnxruntime against torch before DIR is written.",
    )
    onnx.add_argument(
        "--model", required=True, metavar="MODEL", help="zoo name, model file or folder, or hub repo id"
    )
    onnx.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder to write (must not exist or be empty)"
    )
    onnx.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 quantization of the MatMul/Gemm layers (onnxruntime.quantization)",
    )
    onnx.add_argument("--revision", default=None, help=REVISION_HELP)
    onnx.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    return p


def run(args: argparse.Namespace) -> int:
    # Imported here: `clipseg export --help` must not import torch.
    from clipseg.export.onnx import check_out_folder, export_onnx
    from clipseg.zoo import load_resolved, resolve_weights
    from clipseg.zoo.factory import read_file_calibration

    out: Path = args.out
    check_out_folder(out, overwrite=args.overwrite)  # before the model is loaded: fail fast
    weights = resolve_weights(args.model, args.revision)  # resolved (and verified) once
    model, tokenizer = load_resolved(weights)
    calibration = read_file_calibration(weights.path)
    diffs = export_onnx(
        model,
        tokenizer,
        out,
        quantize=args.quantize,
        source=args.model,
        source_sha256=weights.digest(),
        presence=calibration.to_json() if calibration else "",
        overwrite=args.overwrite,
        progress=True,
    )
    checked = ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items())
    sizes = sum(f.stat().st_size for f in out.glob("*.onnx")) / 1e6
    kind = "int8" if args.quantize else "fp32"
    print(f"wrote {out} ({kind}, {sizes:.1f} MB of graphs); fp32 graphs vs torch, max diff: {checked}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, RuntimeError) as err:  # ZooError is a RuntimeError; OSError: files
        print(f"clipseg export: error: {err}", file=sys.stderr)
        return 1
