"""``clipseg predict IMAGE --prompt TEXT [--prompt-image PATH[:MASK]] --out DIR``."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from clipseg.images import ImageError, load_image, load_mask
from clipseg.inference.refine import REFINE_MODES

DEFAULT_MODEL = "shapes-tiny"
OUTPUT_NAMES_HELP = """output files, in --out:
  NAME_<i>_<prompt>.png   mask of prompt number i (0, 1, ...) for the input NAME
  NAME_overlay.png        the masks over the input, with a legend
NAME is the input's file name without its extension (photo.jpg -> photo). Inputs
that share it (photo.jpg and photo.webp, a/x.png and b/x.png) are named by their
path below their common folder instead, '/' and '.' written as '-' (photo-jpg,
photo-webp; a-x-png, b-x-png), so no two inputs ever write the same file."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipseg predict",
        description="Segment images from text or image prompts.",
        epilog=OUTPUT_NAMES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", type=Path, help="input image file(s)")
    p.add_argument("--prompt", action="append", default=[], help="text prompt (repeatable)")
    p.add_argument(
        "--prompt-image",
        action="append",
        default=[],
        metavar="PATH[:MASK]",
        help="support image as a visual prompt, optionally with the object's mask (repeatable); "
        "a PATH that contains ':' is read whole when that file exists",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="zoo name, model file (.safetensors, .pth, folder) or Lightning checkpoint (.ckpt) of "
        f"`clipseg fit` (default: {DEFAULT_MODEL})",
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


def output_names(paths: list[Path]) -> list[str]:
    """The file name prefix of each input's outputs (see ``OUTPUT_NAMES_HELP``); distinct for distinct inputs."""
    resolved = [Path(os.path.abspath(path)) for path in paths]  # not resolve(): a link keeps its own name
    stems = [path.stem for path in resolved]
    shared = [path for path, stem in zip(resolved, stems) if stems.count(stem) > 1]
    root = Path(os.path.commonpath(shared)) if shared else Path()
    names = [
        re.sub(r"[/.\\]+", "-", str(path.relative_to(root))).strip("-") if path in shared else path.stem
        for path in resolved
    ]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:  # the same file given twice, or a stem that equals another input's path name
        raise ValueError(
            f"several inputs would write the outputs named {', '.join(clashes)}: "
            "give each file once, or rename one of them"
        )
    return names


def split_prompt_image(spec: str) -> tuple[str, str | None]:
    """``PATH[:MASK]`` → (path, mask). A PATH with ':' in it is kept whole when that file exists."""
    if Path(spec).is_file() or ":" not in spec:
        return spec, None
    path, _, mask = spec.rpartition(":")
    if not Path(path).is_file() and Path(spec.partition(":")[0]).is_file():
        path, _, mask = spec.partition(":")  # PATH:MASK where the mask's name holds the ':'
    if not Path(path).is_file():
        raise ValueError(
            f"--prompt-image {spec!r}: neither {spec!r} nor {path!r} is a file; "
            "give PATH or PATH:MASK with existing files"
        )
    return path, mask


def _prompts(args: argparse.Namespace) -> list:
    from clipseg.predict import Prompt

    prompts: list = []
    for text in args.prompt:
        prompts.append(Prompt(text=text))
    for spec in args.prompt_image:
        path, mask = split_prompt_image(spec)
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


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` that cannot become a writable folder, before any work is done."""
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == out else f"is below the file {existing}"
        raise ValueError(f"--out {out} {where}; pass a folder (it is created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable; pass a folder you can write to")


def _load_predictor(model: str, device: str | None):
    """A zoo name or model file through ``load_model``; a ``.ckpt`` of ``clipseg fit`` via its saved config."""
    if not model.endswith(".ckpt"):
        from clipseg.zoo import load_model

        return load_model(model, device=device)
    from clipseg.predict import Predictor
    from clipseg.training.export import load_checkpoint_model

    network, tokenizer = load_checkpoint_model(model)
    return Predictor(network, tokenizer, device=device, name=model)


def run(args: argparse.Namespace) -> dict:
    from clipseg.overlay import overlay

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {args.threshold}")
    check_out_folder(args.out)
    prompts = _prompts(args)
    paths = list(dict.fromkeys(args.images))  # a file named twice is segmented (and written) once
    names = output_names(paths)
    images = [load_image(path) for path in paths]  # all inputs checked before anything is written
    if (args.refine == "sam") != (args.sam is not None):
        raise ValueError("--refine sam and --sam NAME_OR_PATH go together (e.g. --sam facebook/sam-vit-base)")
    predictor = _load_predictor(args.model, args.device)
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
    for path, name, img, prob in zip(paths, names, images, probs):
        entry = {"image": str(path), "size": [img.shape[1], img.shape[0]], "masks": []}
        for i, (label, p) in enumerate(zip(labels, prob)):
            mask = (p >= args.threshold) * 255.0 if args.threshold is not None else p * 255.0
            out = args.out / f"{name}_{i}_{_slug(label)}.png"
            _save_png(Image.fromarray(mask.round().astype(np.uint8)), out)
            fraction = float((p >= (args.threshold or 0.5)).mean())
            entry["masks"].append(
                {"prompt": label, "file": str(out), "max_prob": float(p.max()), "area": fraction}
            )
        entry["overlay"] = str(args.out / f"{name}_overlay.png")
        _save_png(overlay(img, prob, labels, threshold=args.threshold), Path(entry["overlay"]))
        summary["images"].append(entry)
    return summary


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"clipseg predict: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning  # the user's input, not our source line, is the point
            summary = run(args)
    except (ImageError, ValueError, OSError, RuntimeError) as err:
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
