"""Choose a shapes-tiny run's model by the #35 rule: its checkpoints, unblended and blended with the base.

    OMP_NUM_THREADS=1 python bench/shapes_choose.py --run outputs/shapes-tiny-v2.2 --steps 750 1500 \
        --base outputs/shapes-tiny-v2-128.safetensors --shares 0.3 0.5

Candidates: ``<run>/steps/step=<N>.ckpt`` for each ``--steps`` (packed to ``<run>/candidates/``), each
as trained and blended with ``--base`` at each ``--shares`` (``blend_files``; the base's share of the
weights). Each is measured ONLY on the original renderer (the five acceptance seeds) and the shifted
one (``--scenes`` held-out scenes, seed 2): what ``bench/shapes_robustness.py`` computes for those
two, never the third or fourth renderer. Chosen = the best shifted text mIoU among candidates with
original text and visual at least ``--min-text`` / ``--min-visual`` (v2's) and absent prompts under
2 % of pixels on both; if none, the best shifted among those within ``--fallback-text`` /
``--fallback-visual`` is reported as not shippable. The chosen file is copied to ``<run>/chosen.safetensors``.

Measurements are kept in ``<run>/candidates/results.json``: a rerun (e.g. with the end step added once
the run is over) measures only the new candidates. Not a ``*_bench.py``: ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from shapes_robustness import measure, table

from clipseg import load_model
from clipseg.data.shapes import shift as shapes_shift
from clipseg.training.finetune_output import blend_files
from clipseg.training.pack import pack_checkpoint

ABSENT_LIMIT = 0.02  # of pixels, on both renderers


def candidates(run: Path, steps: list[int], base: str, shares: list[float]) -> list[Path]:
    """The candidate model files of ``run`` (written under ``<run>/candidates`` when missing)."""
    folder, files = run / "candidates", []
    for step in steps:
        trained = folder / f"step{step}.safetensors"
        if not trained.exists():
            pack_checkpoint(run / "steps" / f"step={step}.ckpt", trained, "shapes-tiny")
        files.append(trained)
        for share in shares:
            blended = folder / f"step{step}-base{share}.safetensors"
            if not blended.exists():
                blend_files(str(trained), base, share, blended)
            files.append(blended)
    return files


def qualifies(scores: dict[str, float], min_text: float, min_visual: float) -> bool:
    """Original text and visual at least the bars, absent prompts under ``ABSENT_LIMIT`` on both renderers."""
    return (
        scores["original/text_miou"] >= min_text
        and scores["original/visual_miou"] >= min_visual
        and scores["original/absent_marked_fraction"] < ABSENT_LIMIT
        and scores["shifted/absent_marked_fraction"] < ABSENT_LIMIT
    )


def choose(rows: dict[str, dict[str, float]], args: argparse.Namespace) -> tuple[str | None, bool]:
    """``(candidate, shippable)``: the best shifted score among those meeting the bars, else the fallback bars."""
    for bars, shippable in (
        ((args.min_text, args.min_visual), True),
        ((args.fallback_text, args.fallback_visual), False),
    ):
        passing = [name for name, scores in rows.items() if qualifies(scores, *bars)]
        if passing:
            return max(passing, key=lambda name: rows[name]["shifted/text_miou"]), shippable
    return None, False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="the run folder (outputs/<name>)")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="checkpoint steps")
    parser.add_argument("--base", required=True, help="model file to blend with (the run's start)")
    parser.add_argument("--shares", type=float, nargs="*", default=[0.3, 0.5], help="the base's shares")
    parser.add_argument("--scenes", type=int, default=200, help="held-out shifted scenes")
    parser.add_argument(
        "--original-scenes", type=int, default=200, help="scenes per acceptance seed (5 seeds)"
    )
    parser.add_argument("--min-text", type=float, default=0.8301, help="v2's original text mIoU")
    parser.add_argument("--min-visual", type=float, default=0.8280, help="v2's original visual mIoU")
    parser.add_argument("--fallback-text", type=float, default=0.827)
    parser.add_argument("--fallback-visual", type=float, default=0.825)
    parser.add_argument("--work", type=Path, default=Path("outputs/shapes-robustness"))
    args = parser.parse_args()
    shifted = args.work / f"shifted-{args.scenes}"  # the folder bench/shapes_robustness.py writes
    if not (shifted / "annotations.csv").exists():
        shapes_shift.write_folder(shifted, args.scenes, seed=2, absent_prompts=True)
    results = args.run / "candidates" / "results.json"
    files = candidates(args.run, args.steps, args.base, args.shares)
    rows = json.loads(results.read_text()) if results.exists() else {}
    for file in files:
        if file.name not in rows:
            rows[file.name] = measure(load_model(str(file)), {"shifted": shifted}, args.original_scenes)
            results.write_text(json.dumps(rows, indent=1))
            print(table({file.name: rows[file.name]}), flush=True)
    print(table(rows))
    chosen, shippable = choose(rows, args)
    if chosen is None:
        print("no candidate meets even the fallback bars")
        return 0
    shutil.copyfile(args.run / "candidates" / chosen, args.run / "chosen.safetensors")
    verdict = "chosen" if shippable else "best non-shippable (below v2 on the original renderer)"
    print(f"{verdict}: {chosen} -> {args.run / 'chosen.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
