"""``clipseg predict IMAGE --prompt TEXT [--prompt-image PATH[:MASK]] --out DIR``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from clipseg.images import ImageError, load_image, load_mask
from clipseg.inference.refine import REFINE_MODES

DEFAULT_MODEL = "shapes-tiny"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipseg predict", description="Segment images from text or image prompts."
    )
    p.add_argument("images", nargs="+", type=Path, help="input image file(s)")
    p.add_argument("--prompt", action="append", default=[], help="text prompt (repeatable)")
    p.add_argument(
        "--prompt-image",
        action="append",
        default=[],
        metavar="PATH[:MASK]",
        help="support image as a visual prompt, optionally with the object's mask (repeatable)",
    )
    p.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"zoo name or checkpoint path (default: {DEFAULT_MODEL})"
    )
    p.add_argument("--out", type=Path, default=Path("outputs/predict"), help="output folder")
    p.add_argument("--threshold", type=float, default=None, help="binarise masks at this probability")
    p.add_argument(
        "--refine",
        choices=(*REFINE_MODES, "sam"),
        default="none",
        help="refinement of the masks at full resolution: 'guided' = guided filter with the image as "
        "guide, 'sam' = SAM inside each mask's box (needs --sam) (default: none, plain bilinear upsampling)",
    )
    p.add_argument("--sam", metavar="NAME_OR_PATH", help="SAM model for --refine sam (transformers format)")
    p.add_argument(
        "--tiles",
        action="store_true",
        help="add detail from full-resolution windows of the model's input size (large images)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "prompt"


def _prompts(args: argparse.Namespace) -> list:
    from clipseg.predict import Prompt

    prompts: list = []
    for text in args.prompt:
        prompts.append(Prompt(text=text))
    for spec in args.prompt_image:
        path, _, mask = spec.partition(":")
        # Read once, here: a bad file fails before any work, with its name.
        prompts.append(
            Prompt(image=load_image(path), mask=load_mask(mask) if mask else None, name=Path(path).name)
        )
    if not prompts:
        raise ValueError("no prompt given: use --prompt TEXT and/or --prompt-image PATH")
    return prompts


def _save_png(img: Image.Image, path: Path) -> None:
    # Write next to the target and rename, so an interrupted run never leaves half a PNG.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as tmp:
        img.save(tmp, format="PNG")
    Path(tmp.name).replace(path)


def run(args: argparse.Namespace) -> dict:
    from clipseg.overlay import overlay
    from clipseg.zoo import load_model

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {args.threshold}")
    prompts = _prompts(args)
    images = [load_image(path) for path in args.images]  # all inputs checked before anything is written
    if (args.refine == "sam") != (args.sam is not None):
        raise ValueError("--refine sam and --sam NAME_OR_PATH go together (e.g. --sam facebook/sam-vit-base)")
    predictor = load_model(args.model, device=args.device)
    if args.sam is not None:
        from clipseg.sam_refine import SamRefiner

        predictor.sam = SamRefiner.from_pretrained(args.sam, device=predictor.device)
    probs = predictor.predict_batch(images, prompts, refine=args.refine, tiles=args.tiles)
    labels = [p.label for p in prompts]
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "model": args.model,
        "threshold": args.threshold,
        "refine": args.refine,
        "tiles": args.tiles,
        "images": [],
    }
    for path, img, prob in zip(args.images, images, probs):
        entry = {"image": str(path), "size": [img.shape[1], img.shape[0]], "masks": []}
        for i, (label, p) in enumerate(zip(labels, prob)):
            mask = (p >= args.threshold) * 255.0 if args.threshold is not None else p * 255.0
            out = args.out / f"{path.stem}_{i}_{_slug(label)}.png"
            _save_png(Image.fromarray(mask.round().astype(np.uint8)), out)
            fraction = float((p >= (args.threshold or 0.5)).mean())
            entry["masks"].append(
                {"prompt": label, "file": str(out), "max_prob": float(p.max()), "area": fraction}
            )
        entry["overlay"] = str(args.out / f"{path.stem}_overlay.png")
        _save_png(overlay(img, prob, labels, threshold=args.threshold), Path(entry["overlay"]))
        summary["images"].append(entry)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = run(args)
    except (ImageError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"clipseg predict: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for entry in summary["images"]:
            for m in entry["masks"]:
                print(f"{entry['image']}: {m['prompt']!r}: {100 * m['area']:.1f}% of pixels -> {m['file']}")
            print(f"overlay: {entry['overlay']}")
    return 0
