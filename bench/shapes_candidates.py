"""Choose a shapes-tiny run's step and blend by a rule fixed before measuring (#35's rule).

    OMP_NUM_THREADS=1 python bench/shapes_candidates.py --run outputs/shapes-tiny-v2.3 \\
        --base outputs/shapes-tiny-v2.safetensors --step 1250 --step 2500

Candidates: each ``--step`` checkpoint (``<run>/steps/step=N.ckpt``) packed as trained and blended
with ``--base`` at each ``--share`` of the base (``finetune_output.blend_files``). Each is measured
on the original renderer (``shapes_quality_over_seeds``: the five acceptance seeds x
``--original-scenes``) and on the shifted renderer's held-out scenes (seed 2, as
``bench/shapes_robustness.py``) only: the third and fourth renderers play no part in choosing.

Chosen: the best shifted text mIoU among candidates with original text and visual at least
``--bar`` and absent prompts under 2 % of pixels on both renderers; if none, the best among those
at least ``--fallback`` ("not shippable"), copied to ``--chosen``. Measurements are kept in ``<run>/candidates.json``, so a
later call (the end of the run) measures only the new candidates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from shapes_robustness import heldout_folders, measure, table

from clipseg import load_model
from clipseg.training.finetune_output import blend_files
from clipseg.training.pack import pack_checkpoint

ABSENT_LIMIT = 0.02  # the bound on pixels marked for absent prompts


def candidate_files(run: Path, base: str, steps: list[int], shares: list[float]) -> dict[str, Path]:
    """``{label: model file}`` of every step, as trained and blended, written under ``<run>/candidates``."""
    folder = run / "candidates"
    files: dict[str, Path] = {}
    for step in steps:
        trained = folder / f"step{step}.safetensors"
        if not trained.exists():
            pack_checkpoint(run / "steps" / f"step={step}.ckpt", trained, "shapes-tiny")
        files[f"step {step}"] = trained
        for share in shares:
            blended = folder / f"step{step}-base{share:g}.safetensors"
            if not blended.exists():
                blend_files(str(trained), base, share, blended)
            files[f"step {step}, {share:g} of base"] = blended
    return files


def qualifies(scores: dict[str, float], text: float, visual: float) -> bool:
    """Original text and visual mIoU at least ``text`` / ``visual``, absent prompts under the limit on both renderers."""
    return (
        scores["original/text_miou"] >= text
        and scores["original/visual_miou"] >= visual
        and scores["original/absent_marked_fraction"] < ABSENT_LIMIT
        and scores["shifted/absent_marked_fraction"] < ABSENT_LIMIT
    )


def choose(
    rows: dict[str, dict[str, float]], bar: tuple[float, float], fallback: tuple[float, float]
) -> tuple[str | None, bool]:
    """The chosen label and whether it is shippable (it passed ``bar``); ``None`` if none passes ``fallback``."""
    for limits, shippable in ((bar, True), (fallback, False)):
        passing = [label for label, scores in rows.items() if qualifies(scores, *limits)]
        if passing:
            return max(passing, key=lambda label: rows[label]["shifted/text_miou"]), shippable
    return None, False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder with steps/step=N.ckpt")
    parser.add_argument("--base", required=True, help="the model the run started from (blends, reference)")
    parser.add_argument("--step", type=int, action="append", required=True)
    parser.add_argument("--share", type=float, action="append", help="base shares (default 0.3, 0.5)")
    parser.add_argument("--bar", type=float, nargs=2, default=(0.8301, 0.8280), help="text, visual (v2's)")
    parser.add_argument("--fallback", type=float, nargs=2, default=(0.827, 0.825), help="text, visual")
    parser.add_argument("--scenes", type=int, default=200, help="shifted held-out scenes")
    parser.add_argument("--original-scenes", type=int, default=200, help="per acceptance seed (5 seeds)")
    parser.add_argument("--work", type=Path, default=Path("outputs/shapes-robustness"))
    parser.add_argument("--chosen", type=Path, help="copy the chosen candidate's file here")
    args = parser.parse_args()
    shifted = heldout_folders(args.work, args.scenes, names=("shifted",))["shifted"]
    record = args.run / "candidates.json"
    rows: dict[str, dict[str, float]] = json.loads(record.read_text())["rows"] if record.exists() else {}
    files = candidate_files(args.run, args.base, args.step, args.share or [0.3, 0.5])
    for label, path in files.items():
        if label not in rows:
            rows[label] = measure(load_model(str(path)), {"shifted": shifted}, args.original_scenes)
            record.write_text(json.dumps({"rows": rows}, indent=1))  # kept after each: a long call can stop
            print(label, json.dumps(rows[label]), flush=True)
    chosen, shippable = choose(rows, tuple(args.bar), tuple(args.fallback))
    record.write_text(json.dumps({"rows": rows, "chosen": chosen, "shippable": shippable}, indent=1))
    print(table(rows))
    if chosen is not None and args.chosen is not None:
        shutil.copyfile(files[chosen], args.chosen)
    print(f"chosen: {chosen} ({'shippable' if shippable else 'NOT shippable'})" if chosen else "chosen: none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
