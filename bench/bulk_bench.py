"""Folder throughput of ``clipseg predict DIR`` against a plain loop calling ``predict`` once per image.

Both mask the same N shapes scenes (256 x 256 PNG) with the shipped shapes-tiny and 2 text prompts
and write the same PNG masks (``--format png``). The loop: for each file, ``predictor.predict(path,
prompts)`` and one ``PIL`` save per mask. ``clipseg predict DIR`` (run in this process, model loading
included) decodes in background threads, encodes the prompts once, batches 8 images per model call
and writes in background threads. Runs are interleaved (loop, CLI, loop, CLI, ...), so the load of
other processes on a shared CPU hits both alike; the best run of each counts.

Peak memory: ``clipseg predict`` in a fresh process on N and on 10 x N images (the maximum resident
set of that process, from ``wait4``); flat means the second is not larger by more than a few MiB.

    python bench/bulk_bench.py [--quick] [--images 200] [--repeats 3] [--threads 1]

``--threads`` sets torch's threads for both (default 1: on a small shared CPU a tiny model is
fastest on one thread, and the CLI's decode/write threads need the other core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.3
PROMPTS = ["red square", "blue circle"]


def make_images(folder: Path, count: int, distinct: int) -> None:
    """``count`` PNG files; the first ``distinct`` are scenes, the rest hard links to them (same bytes)."""
    from PIL import Image

    from clipseg.data.shapes.scenes import ShapesConfig, draw_sample

    folder.mkdir(parents=True)
    config = ShapesConfig(size=256)
    for i in range(count):
        path = folder / f"img{i:05d}.png"
        if i < distinct:
            Image.fromarray(draw_sample(i, 0, split="test", config=config)[0]["image"]).save(path)
        else:
            os.link(folder / f"img{i % distinct:05d}.png", path)


def plain_loop(folder: Path, out: Path) -> float:
    """Seconds for ``predict`` once per image plus a PNG save per mask (model loading included)."""
    import numpy as np
    from PIL import Image

    from clipseg import load_model

    start = time.perf_counter()
    predictor = load_model("shapes-tiny", device="cpu")
    out.mkdir(parents=True)
    for path in sorted(folder.glob("*.png")):
        probs = predictor.predict(path, PROMPTS)
        for i, p in enumerate(probs):
            Image.fromarray((p * 255).round().astype(np.uint8)).save(out / f"{path.stem}_{i}.png")
    return time.perf_counter() - start


def cli_args(folder: Path, out: Path) -> list[str]:
    prompts = [a for p in PROMPTS for a in ("--prompt", p)]
    return ["predict", str(folder), *prompts, "--model", "shapes-tiny", "--out", str(out), "--format", "png"]


def cli_run(folder: Path, out: Path) -> float:
    """Seconds for ``clipseg predict DIR`` in this process (model loading included)."""
    import contextlib
    import io

    from clipseg.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main([*cli_args(folder, out), "--device", "cpu"])
    if code:
        raise SystemExit(f"clipseg predict failed with exit code {code}")
    return time.perf_counter() - start


def peak_rss_mib(folder: Path, out: Path, threads: int) -> float:
    """Maximum resident set of ``clipseg predict DIR`` in a fresh process, in MiB."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipseg.cli", *cli_args(folder, out)], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"clipseg predict failed with exit code {proc.returncode}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 images, one repeat")
    parser.add_argument("--images", type=int, default=200, help="images in the folder (N)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each (the best counts)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    args = parser.parse_args()
    count, repeats = (50, 1) if args.quick else (args.images, args.repeats)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="clipseg-bulk-bench-") as tmp:
        root = Path(tmp)
        make_images(root / "small", count, distinct=count)
        make_images(root / "large", 10 * count, distinct=count)
        make_images(root / "warm-up", 8, distinct=8)
        plain_loop(root / "warm-up", root / "warm-loop")  # first calls pay one-time costs: not timed
        cli_run(root / "warm-up", root / "warm-cli")
        loop_runs, cli_runs = [], []
        for r in range(repeats):
            loop_runs.append(plain_loop(root / "small", root / f"loop{r}"))
            cli_runs.append(cli_run(root / "small", root / f"cli{r}"))
            shutil.rmtree(root / f"loop{r}")
            shutil.rmtree(root / f"cli{r}")
        small = peak_rss_mib(root / "small", root / "mem-small", args.threads)
        large = peak_rss_mib(root / "large", root / "mem-large", args.threads)

    loop_rate, cli_rate = count / min(loop_runs), count / min(cli_runs)
    ratio = cli_rate / loop_rate
    print(f"{count} images 256x256, 2 prompts, PNG masks, torch threads {args.threads}, best of {repeats}")
    print(f"plain loop, predict() per image: {loop_rate:7.1f} images/s  (runs: {_fmt(loop_runs)})")
    print(f"clipseg predict DIR:             {cli_rate:7.1f} images/s  (runs: {_fmt(cli_runs)})")
    print(f"speed-up: {ratio:.2f}x (target >= {TARGET}x: {'ok' if ratio >= TARGET else 'MISSED'})")
    print(
        f"peak memory of clipseg predict: {small:.0f} MiB for {count} images, {large:.0f} MiB for {10 * count} "
        f"images ({large - small:+.0f} MiB)"
    )


def _fmt(runs: list[float]) -> str:
    return ", ".join(f"{s:.1f}s" for s in runs)


if __name__ == "__main__":
    main()
