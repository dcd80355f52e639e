"""``clipseg predict PATH... --prompt TEXT [--prompt-image PATH[:MASK]] --out DIR``: images, folders, videos."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from clipseg.cli import DEFAULT_MODEL
from clipseg.cli.predict_report import print_summary
from clipseg.core.help import DEVICE_HELP, MODEL_HELP, HelpFormatter
from clipseg.core.images import ImageError, load_image, load_mask
from clipseg.inference.postprocess import COMBINE_MODES, PostProcess
from clipseg.inference.refine import REFINE_MODES
from clipseg.inference.runs import BulkRun, MaskOptions
from clipseg.inference.writers import FORMATS, VIDEO_OUTPUTS

if TYPE_CHECKING:
    from clipseg.inference import Predictor

BACKENDS = ("torch", "onnx")
ENGINES = ("local", "ray")


LAYOUT_HELP = """\
outputs (--out DIR) mirror the input tree, relative to the common folder of the named inputs
(a named folder counts as itself, a file as its parent, a glob as its folder before the first
wildcard). For an image KEY (its path without extension; images that share a folder and stem
get the extension appended: photo.jpg and photo.webp give photo-jpg and photo-webp; a/x.png and
b/x.png stay apart in a/ and b/) and mask i of prompt P:
  png      KEY_i_P.png        8-bit soft mask, or 0/255 with --threshold or a morphology option
  rgba     KEY_i_P_rgba.png   the image with the mask as alpha (cut-out)
  npz      KEY.npz            masks (K x H x W float32) and labels
  overlay  KEY_overlay.png    masks over the image, with a legend
  coco     DIR/coco.json      RLE masks (at --threshold, else 0.5), scores, prompts as categories
  instances DIR/instances.json COCO, one annotation per object of each mask (box, score = mean prob)
  labels   KEY_labels.png     indexed label map (0 background, k+1 prompt k); legend in DIR/labels.json
A video VIDEO gets a folder VIDEO/ (e.g. clips/walk.mp4/) with frame n's files named n_i_P.png
(6-digit n) and/or the mask videos i_P.mp4 (--video-output).
Post-processing order: negatives, combine, threshold, erode, min-area, fill-holes, dilate,
feather (--smooth averages video frames before all of them).
A rerun skips inputs whose outputs are complete and were made with the same options (each
file records them; other options redo the input; --overwrite redoes all); files a run wrote are
never taken as inputs, so --out may be the inputs' folder. A bad input is reported by name, the
run goes on and the exit code is 1.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipseg predict",
        description="Segment images, folders and videos from text or image prompts.",
        epilog=LAYOUT_HELP,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "images", nargs="+", metavar="PATH", help="image or video files, folders (recursive), globs"
    )
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT", help="text prompt (repeatable)")
    p.add_argument(
        "--prompt-image",
        action="append",
        default=[],
        metavar="PATH[:MASK]",
        help="support image as a visual prompt, optionally with the object's mask (repeatable); "
        "a PATH that contains ':' is read whole when that file exists",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/predict"),
        metavar="DIR",
        help="output folder (layout below)",
    )
    p.add_argument(
        "--format",
        dest="formats",
        action="extend",
        type=lambda text: text.split(","),
        metavar="FMT",
        help=f"output formats, repeatable or comma-separated: {', '.join(FORMATS)} (default: png,overlay)",
    )
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs already exist")
    p.add_argument(
        "--refine",
        choices=(*REFINE_MODES, "sam"),
        default="none",
        help="refinement of the masks at full resolution: 'guided' = guided filter with the image as "
        "guide, 'sam' = SAM inside each mask's box (needs --sam) (default: none, plain bilinear upsampling)",
    )
    p.add_argument(
        "--sam", metavar="MODEL", help="SAM model for --refine sam: hub name or folder (transformers format)"
    )
    p.add_argument(
        "--tiles",
        action="store_true",
        help="add detail from full-resolution windows of the model's input size (large images)",
    )
    post = p.add_argument_group("post-processing (at each image's resolution, in the order listed below)")
    post.add_argument(
        "--smooth",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="FRAMES",
        help="videos: average probabilities over FRAMES neighbours on each side (default 1 when given)",
    )
    post.add_argument(
        "--negative",
        action="append",
        default=[],
        metavar="TEXT",
        help="remove regions matching TEXT from every mask (repeatable)",
    )
    post.add_argument(
        "--combine", choices=COMBINE_MODES, default="none", help="merge the prompts' masks into one"
    )
    post.add_argument(
        "--threshold", type=float, default=None, metavar="P", help="binarise masks at this probability (0..1)"
    )
    post.add_argument("--erode", type=int, default=0, metavar="PX", help="shrink masks by PX pixels")
    post.add_argument(
        "--min-area", type=int, default=0, metavar="PX", help="drop regions smaller than PX pixels"
    )
    post.add_argument("--fill-holes", action="store_true", help="fill holes inside masks")
    post.add_argument("--dilate", type=int, default=0, metavar="PX", help="grow masks by PX pixels")
    post.add_argument(
        "--feather", type=int, default=0, metavar="PX", help="blur mask edges over PX pixels (soft masks)"
    )
    p.add_argument(
        "--video-output",
        choices=VIDEO_OUTPUTS,
        default="frames",
        help="videos: PNG frames, mask videos, or both",
    )
    p.add_argument(
        "--min-presence",
        type=float,
        default=0.0,
        metavar="P",
        help="a prompt whose presence (the model's calibrated yes/no, 0-1) is under P gets an empty mask",
    )
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per model call")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="model runtime: torch, or onnx (onnxruntime; a zoo name or weights are exported once "
        "into the cache) (default: onnx for an ONNX export folder, else torch)",
    )
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="with --backend onnx: the int8 export (fastest on CPU)",
    )
    scale = p.add_argument_group("scale-out (docs/scale-out.md)")
    scale.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process; ray: actors on a Ray cluster (pip install 'clipseg[ray]'), "
        "same outputs; --out must be a folder every node can write",
    )
    scale.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to join (default: RAY_ADDRESS, else a local cluster started for the run)",
    )
    scale.add_argument(
        "--workers", type=int, metavar="N", help="Ray actors, each with its own model (default 1)"
    )
    scale.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="N",
        help="GPUs per Ray actor, e.g. 0.5: two per GPU (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    return p


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
    from clipseg.core.prompts import Prompt

    prompts: list = []
    for text in args.prompt:
        prompts.append(Prompt(text=text))
    for spec in args.prompt_image:
        path, mask = split_prompt_image(spec)
        # The mask says which object of the support image is meant: one image with two masks is two prompts.
        name = f"{Path(path).name}:{Path(mask).name}" if mask else Path(path).name
        # Read once, here: a bad file fails before any work, with its name.
        prompts.append(Prompt(image=load_image(path), mask=load_mask(mask) if mask else None, name=name))
    if not prompts:
        raise ValueError("no prompt given: use --prompt TEXT and/or --prompt-image PATH")
    return prompts


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` that cannot become a writable folder, before any work is done."""
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == out else f"is below the file {existing}"
        raise ValueError(f"--out {out} {where}; pass a folder (it is created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable; pass a folder you can write to")


def load_predictor(
    model: str,
    device: str | None,
    backend: str | None = None,
    quantize: str | None = None,
    sam: str | None = None,
) -> Predictor:
    """A zoo name, model file or ONNX folder through ``load_model``; a ``.ckpt`` of ``clipseg fit`` via
    its saved config; with ``sam`` (``--sam``) the SAM refiner set. What every engine's workers call."""
    if not model.endswith(".ckpt"):
        from clipseg.zoo import load_model

        predictor = load_model(model, device=device, backend=backend, quantize=quantize)
    elif backend == "onnx":
        raise ValueError(
            f"--backend onnx: {model} is a training checkpoint; export it first (clipseg export onnx)"
        )
    else:
        from clipseg.backends.torch import TorchBackend
        from clipseg.inference import Predictor
        from clipseg.training.pack import load_checkpoint_model

        network, tokenizer = load_checkpoint_model(model)
        predictor = Predictor(TorchBackend(network, tokenizer, device=device), name=model)
    if sam is not None:
        from clipseg.backends.sam import SamRefiner

        predictor.sam = SamRefiner.from_pretrained(sam, device=predictor.backend.device)
    return predictor


def stamped_model(model: str, backend: str | None, quantize: str | None) -> str:
    """The model as the outputs' stamps record it: its name, and the runtime when ``--backend onnx``
    runs a model that torch would run (other pixels: a rerun with the other backend redoes the inputs)."""
    if backend != "onnx":
        return model  # torch, or an ONNX export folder by default: its path already says which
    return f"{model} [onnx{'-' + quantize if quantize else ''}]"


def _mask_options(args: argparse.Namespace) -> MaskOptions:
    """The ``--threshold`` and the other pixel options of the command line, as one value."""
    if not 0.0 <= args.min_presence <= 1.0:
        raise ValueError(f"--min-presence {args.min_presence}: a presence is in [0, 1]")
    postprocess = PostProcess(
        threshold=args.threshold,
        negative=tuple(args.negative),
        combine=args.combine,
        erode=args.erode,
        min_area=args.min_area,
        fill_holes=args.fill_holes,
        dilate=args.dilate,
        feather=args.feather,
    )
    return MaskOptions(
        postprocess=postprocess,
        refine=args.refine,
        tiles=args.tiles,
        smooth=args.smooth,
        min_presence=args.min_presence,
        batch_size=args.batch_size,
    )


def _check_engine(args: argparse.Namespace) -> None:
    """Refuse flags that the chosen engine or backend would ignore."""
    ray_only = {
        "--ray-address": args.ray_address,
        "--workers": args.workers,
        "--gpus-per-worker": args.gpus_per_worker,
    }
    given = [flag for flag, value in ray_only.items() if value is not None]
    if args.engine == "local" and given:
        raise ValueError(f"{', '.join(given)}: only with --engine ray")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: at least 1 Ray actor")
    if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
        raise ValueError(f"--gpus-per-worker {args.gpus_per_worker}: not negative")
    if args.quantize and args.backend != "onnx":
        raise ValueError("--quantize int8 runs on onnxruntime: add --backend onnx")


def run(args: argparse.Namespace) -> dict:
    options = _mask_options(args)
    prompts = _prompts(args)
    check_out_folder(args.out)
    _check_engine(args)
    if (args.refine == "sam") != (args.sam is not None):
        raise ValueError("--refine sam and --sam MODEL go together (e.g. --sam facebook/sam-vit-base)")
    load = partial(load_predictor, args.model, args.device, args.backend, args.quantize, args.sam)
    # Planned before the model loads: a path that matches nothing, or two inputs that would write the
    # same file, fail first.
    plan = BulkRun.plan(
        stamped_model(args.model, args.backend, args.quantize),
        prompts,
        options,
        args.images,
        out=args.out,
        formats=tuple(args.formats or ("png", "overlay")),
        overwrite=args.overwrite,
        video_output=args.video_output,
        on_error=lambda path, message: print(f"clipseg predict: error: {message}", file=sys.stderr),
    )
    if args.engine == "ray":
        from clipseg.ray import RayEngine

        workers, gpus = args.workers or 1, args.gpus_per_worker or 0.0
        engine = RayEngine(
            load, prompts, options, address=args.ray_address, workers=workers, gpus_per_worker=gpus
        )
    else:
        from clipseg.inference.bulk import BulkMasker

        engine = BulkMasker(load(), prompts, options)
    summary = plan.run(engine.outcomes)
    return {
        "model": args.model,
        "backend": args.backend,
        "engine": args.engine,
        "threshold": args.threshold,
        "refine": args.refine,
        "tiles": args.tiles,
        "images": [e for e in summary.entries if "image" in e],
        "videos": [e for e in summary.entries if "video" in e],
        "coco": str(summary.coco) if summary.coco else None,
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": [{"input": path, "error": message} for path, message in summary.failed],
        "summary": summary.line(),
    }


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"clipseg predict: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning  # the user's input, not our source line, is the point
            summary = run(args)
    except (ImageError, ValueError, OSError, RuntimeError) as err:  # OSError: files, backbones
        print(f"clipseg predict: error: {err}", file=sys.stderr)
        return 1
    print_summary(summary, as_json=args.json)
    return 1 if summary["failed"] else 0
