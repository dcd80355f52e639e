"""Bulk masking on Ray against the local engine: ``clipseg predict DIR`` vs ``--engine ray`` with 1 and 2 actors.

All runs mask the same N shapes scenes (256 x 256 PNG) with the shipped shapes-tiny and 2 text prompts
and write PNG masks (``--format png``), once with the torch backend and once with the int8 ONNX
export (``--backend onnx --quantize int8``; the export is made into the cache before timing). A run's
time includes loading the model (in each actor for Ray) and writing every file; a run of one batch
(8 images) measures that fixed cost, and the marginal rate is (N - 8) / (run of N - run of 8).
Ray's start-up (``ray.init`` of a local cluster with ``--cpus`` CPUs) is timed apart, once. The
scaling ratio is the rate with 2 actors over the rate with 1. Each actor is one Ray CPU (one torch thread); the local
engine runs torch on one thread too, with its decode and write threads beside it.

On a shared machine, the load of other processes changes every number: the script prints the load
average before and after.

    python bench/ray_bench.py [--quick] [--images 200] [--cpus 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bulk_bench import PROMPTS, make_images

BATCH = 8  # one model call: a run of this many images measures an engine's fixed cost

if TYPE_CHECKING:
    from clipseg.inference.runs import Outcome
    from clipseg.inference.writers import Layout


def timed(folder: Path, out: Path, outcomes: Callable[[Layout, list], Iterable[Outcome]]) -> float:
    """Seconds for one run of an engine's ``outcomes`` on ``folder`` (plan and COCO/summary included)."""
    from clipseg.inference.runs import BulkRun, MaskOptions

    start = time.perf_counter()
    with BulkRun.plan(
        "shapes-tiny", PROMPTS, MaskOptions(), folder, out=out, formats=("png",), progress=False
    ) as run:
        for outcome in outcomes(run.layout, run.todo):
            assert outcome.error is None, outcome.error
            run.record(outcome)
        summary = run.finish()
    assert summary.done == len(run.todo), summary.line()
    shutil.rmtree(out)
    return time.perf_counter() - start


def local_outcomes(backend: dict, layout: Layout, todo: list) -> Iterable[Outcome]:
    """The local engine (model loading included)."""
    from clipseg import load_model
    from clipseg.inference.bulk import BulkMasker

    return BulkMasker(load_model("shapes-tiny", device="cpu", **backend), PROMPTS).outcomes(layout, todo)


def ray_outcomes(backend: dict, workers: int, layout: Layout, todo: list) -> Iterable[Outcome]:
    """The Ray engine with ``workers`` actors (each loads the model) on the running cluster."""
    from clipseg import load_model
    from clipseg.inference.runs import MaskOptions
    from clipseg.ray import RayEngine

    engine = RayEngine(
        partial(load_model, "shapes-tiny", device="cpu", **backend), PROMPTS, MaskOptions(), workers=workers
    )
    return engine.outcomes(layout, todo)


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 images")
    parser.add_argument("--images", type=int, default=200, help="images in the folder (N)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (the best counts)")
    args = parser.parse_args()
    count, repeats = (50, 1) if args.quick else (args.images, args.repeats)
    os.environ["OMP_NUM_THREADS"] = "1"
    import ray
    import torch

    from clipseg import load_model

    torch.set_num_threads(1)
    before = load()
    load_model("shapes-tiny", backend="onnx", quantize="int8")  # the int8 export, made once into the cache
    backends = {"torch": {}, "onnx int8": {"backend": "onnx", "quantize": "int8"}}
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="clipseg-ray-bench-") as tmp:
        root = Path(tmp)
        make_images(root / "in", count, distinct=count)
        make_images(root / "one-batch", BATCH, distinct=BATCH)
        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, address="local", logging_level="warning")
        startup = time.perf_counter() - start
        try:
            for name, backend in backends.items():
                engines = {
                    "local engine": partial(local_outcomes, backend),
                    "ray, 1 actor": partial(ray_outcomes, backend, 1),
                    "ray, 2 actors": partial(ray_outcomes, backend, 2),
                }
                timed(
                    root / "one-batch", root / "out", engines["local engine"]
                )  # imports, first calls: not timed
                for label, outcomes in engines.items():
                    fixed = min(timed(root / "one-batch", root / "out", outcomes) for _ in range(repeats))
                    total = min(timed(root / "in", root / "out", outcomes) for _ in range(repeats))
                    rows.append((name, label, fixed, total))
        finally:
            ray.shutdown()
    print(
        f"{count} images 256x256, 2 prompts, PNG masks; Ray cluster of {args.cpus} CPUs on {os.cpu_count()} cores"
    )
    print(f"before: {before}; after: {load()}")
    print(f"ray.init (local cluster start-up, once per process): {startup:.1f} s")
    print(
        f"backend    engine          {count} images  images/s  | {BATCH} images (fixed cost)  marginal images/s"
    )
    rates = {}
    for name, label, fixed, total in rows:
        rates[(name, label)] = count / total
        # Once actors run and models are loaded; "n/a" when the load of other processes hid the difference.
        marginal = f"{(count - BATCH) / (total - fixed):.1f}" if total > fixed else "n/a"
        print(
            f"{name:10s} {label:14s} {total:8.1f} s {count / total:9.1f}  | {fixed:10.1f} s {marginal:>22s}"
        )
    for name in backends:
        ratio = rates[(name, "ray, 2 actors")] / rates[(name, "ray, 1 actor")]
        print(f"{name}: scaling, 2 actors / 1 actor: {ratio:.2f}x")


if __name__ == "__main__":
    main()
