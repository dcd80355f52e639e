"""onnxruntime fp32 and int8 vs torch fp32: speed of a random-weight ViT-B/16 CLIPSeg at 352 x 352, and
what int8 costs in quality (shapes-tiny text mIoU; ViT-B/16 probability differences).

One call = encode one image + embed N text prompts + decode them (what ``Predictor.predict`` asks of a
backend), on the same preprocessed inputs for all three runtimes, interleaved, best of the repeats.
Threads are fixed for both runtimes (torch ``set_num_threads``, onnxruntime ``intra_op_num_threads``).

    python bench/onnx_bench.py [--quick] [--threads 1] [--prompts 1,8] [--scenes 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit

from clipseg.backends.onnx import OnnxBackend
from clipseg.backends.torch import TorchBackend
from clipseg.core.preprocess import preprocess
from clipseg.core.tokenizer import build_clip_tokenizer
from clipseg.data.shapes.scenes import COLORS, SHAPES, ShapesConfig, draw_sample
from clipseg.eval.quality import QUALITY_SEED, shapes_quality
from clipseg.export.onnx import export_onnx
from clipseg.export.quantize import quantize_export
from clipseg.inference import Predictor
from clipseg.modeling.convert import random_cidas_clipseg
from clipseg.zoo import load_weights

PHRASES = [f"a photo of a {color} {shape}." for color in COLORS for shape in SHAPES]


def best_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Best wall and CPU seconds (all threads of this process) of each run over ``repeats`` rounds,
    interleaved so that load from other processes hits all alike. On a shared CPU the CPU time is
    the steadier measure of the work done."""
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (min(t[0] for t in values), min(t[1] for t in values)) for name, values in times.items()}


def call(backend, pixels: np.ndarray, prompts: list[str]) -> np.ndarray:
    """Logits of one image for ``prompts``: encode image, embed text, decode."""
    return backend.decode(backend.encode_image(pixels), backend.encode_text(prompts))


def vit_b16(args: argparse.Namespace, folder: Path) -> None:
    tokenizer = build_clip_tokenizer(PHRASES, folder / "tokenizer")
    model = random_cidas_clipseg(tokenizer=tokenizer)
    start = time.perf_counter()
    export_onnx(model, tokenizer, folder / "fp32")
    quantize_export(folder / "fp32", folder / "int8")
    sizes = {
        kind: sum(f.stat().st_size for f in (folder / kind).glob("*.onnx")) / 1e6 for kind in ("fp32", "int8")
    }
    print(
        f"ViT-B/16 CLIPSeg (random weights, rd64, layers 3/6/9): export + check + int8 in "
        f"{time.perf_counter() - start:.0f} s; graphs fp32 {sizes['fp32']:.0f} MB, int8 {sizes['int8']:.0f} MB"
    )
    backends = {
        "torch fp32": TorchBackend(model, tokenizer, device="cpu"),
        "onnxruntime fp32": OnnxBackend(folder / "fp32", threads=args.threads),
        "onnxruntime int8": OnnxBackend(folder / "int8", threads=args.threads),
    }
    sample, _ = draw_sample(QUALITY_SEED, 0, split="test", config=ShapesConfig(size=352))
    pixels = preprocess(np.asarray(sample["image"]), backends["torch fp32"].preprocessing)
    threads = f"torch {torch.get_num_threads()} thread(s), onnxruntime {args.threads}"
    print(f"speed at 352 x 352, 1 image, {threads}, best of {args.repeats} (ratio: torch time / time):")
    for n in args.prompts:
        prompts = PHRASES[:n]
        runs = {name: (lambda b=b, p=prompts: call(b, pixels, p)) for name, b in backends.items()}
        seconds = best_seconds(runs, args.repeats)
        wall, cpu = seconds["torch fp32"]
        line = ", ".join(
            f"{name} {1e3 * w:.0f} ms wall ({wall / w:.2f}x), {1e3 * c:.0f} ms CPU ({cpu / c:.2f}x)"
            for name, (w, c) in seconds.items()
        )
        print(f"  N = {n}: {line}")
        probs = {name: expit(call(b, pixels, prompts)) for name, b in backends.items()}
        for name in ("onnxruntime fp32", "onnxruntime int8"):
            diff = np.abs(probs[name] - probs["torch fp32"])
            print(
                f"    {name} vs torch fp32 probabilities: max abs {diff.max():.2e}, mean abs {diff.mean():.2e}"
            )


def shapes_tiny(args: argparse.Namespace, folder: Path) -> None:
    model, tokenizer = load_weights("shapes-tiny")
    export_onnx(model, tokenizer, folder / "fp32")
    quantize_export(folder / "fp32", folder / "int8")
    predictors = {
        "torch fp32": Predictor(TorchBackend(model, tokenizer, device="cpu")),
        "onnxruntime fp32": Predictor(OnnxBackend(folder / "fp32", threads=args.threads)),
        "onnxruntime int8": Predictor(OnnxBackend(folder / "int8", threads=args.threads)),
    }
    print(f"shapes-tiny quality, {args.scenes} scenes of seed {QUALITY_SEED} (threshold 0.5):")
    base = None
    for name, predictor in predictors.items():
        scores = shapes_quality(predictor, n=args.scenes, progress=False)
        base = base or scores
        print(
            f"  {name:<17} text mIoU {scores['text_miou']:.4f} ({scores['text_miou'] - base['text_miou']:+.4f}), "
            f"visual mIoU {scores['visual_miou']:.4f} ({scores['visual_miou'] - base['visual_miou']:+.4f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed repeats, 40 scenes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompts", default="1,8", help="prompt counts N, comma-separated")
    parser.add_argument("--scenes", type=int, default=200)
    args = parser.parse_args()
    args.prompts = [int(n) for n in args.prompts.split(",")]
    if args.quick:
        args.repeats, args.scenes = 2, 40
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        shapes_tiny(args, Path(tmp) / "shapes-tiny")
        vit_b16(args, Path(tmp) / "vit-b16")
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
