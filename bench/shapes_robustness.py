"""How a shapes model holds on scenes it was not drawn for: the before → after table of shapes-tiny v2.

    OMP_NUM_THREADS=1 python bench/shapes_robustness.py --model outputs/v1.safetensors --model shapes-tiny

For each ``--model`` (a zoo name or model file), on four renderers:

- original: ``clipseg.eval.quality.shapes_quality_over_seeds`` (the zoo card's numbers: text, visual, absent,
  swapped; mean over the five acceptance seeds of ``--original-scenes`` scenes each);
- shifted: ``--scenes`` held-out scenes of ``clipseg.data.shapes.shift`` (seed 2, as
  ``bench/finetune_shift.py``'s held-out folder), text mIoU@0.5 and marked pixels of absent prompts;
- third: ``--scenes`` scenes of ``bench/shapes_third.py`` (seed 3), the same two numbers;
- fourth: ``--scenes`` scenes of ``bench/shapes_fourth.py`` (seed 5), the same two numbers;
- fifth: ``--scenes`` scenes of ``bench/shapes_fifth.py`` (seed 7), the same two numbers.

Prints a markdown table and writes ``<work>/results.json``. Not a ``*_bench.py``: ``make bench`` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import shapes_fifth
import shapes_fourth
import shapes_third

from clipseg import load_model
from clipseg.data.shapes import shift as shapes_shift
from clipseg.eval.quality import folder_quality, shapes_quality_over_seeds
from clipseg.inference import Predictor

# The held-out renderers: folder writer and seed of each.
HELDOUT = {
    "shifted": (shapes_shift.write_folder, 2),
    "third": (shapes_third.write_folder, 3),
    "fourth": (shapes_fourth.write_folder, 5),
    "fifth": (shapes_fifth.write_folder, 7),
}
COLUMNS = (
    ("original text", "original/text_miou"),
    ("original visual", "original/visual_miou"),
    ("original absent", "original/absent_marked_fraction"),
    ("original swapped", "original/swapped_miou"),
    ("shifted text", "shifted/text_miou"),
    ("shifted absent", "shifted/absent_marked_fraction"),
    ("third text", "third/text_miou"),
    ("third absent", "third/absent_marked_fraction"),
    ("fourth text", "fourth/text_miou"),
    ("fourth absent", "fourth/absent_marked_fraction"),
    ("fifth text", "fifth/text_miou"),
    ("fifth absent", "fifth/absent_marked_fraction"),
)


def heldout_folders(work: Path, scenes: int, names: tuple[str, ...] = tuple(HELDOUT)) -> dict[str, Path]:
    """The held-out annotated folders of the renderers ``names`` (one absent prompt per image), written
    once under ``work``."""
    folders = {name: work / f"{name}-{scenes}" for name in names}
    for name, folder in folders.items():
        write_folder, seed = HELDOUT[name]
        if not (folder / "annotations.csv").exists():
            write_folder(folder, scenes, seed=seed, absent_prompts=True)
    return folders


def measure(predictor: Predictor, folders: dict[str, Path], original_scenes: int) -> dict[str, float]:
    """``{"original/<score>", "<held-out renderer>/<score>": value}`` of one model."""
    scores: dict[str, float] = {}
    if original_scenes > 0:
        original = shapes_quality_over_seeds(predictor, n=original_scenes, progress=False)
        scores |= {f"original/{k}": v for k, v in original.items() if isinstance(v, float)}
    for name, folder in folders.items():
        result = folder_quality(predictor, folder, progress=False)
        scores |= {
            f"{name}/{k}": v for k, v in result.items() if k in ("text_miou", "absent_marked_fraction")
        }
    return scores


def table(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table: one row per model, the ``COLUMNS`` it has."""
    header = [title for title, key in COLUMNS if any(key in r for r in rows.values())]
    lines = ["| model | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for model, scores in rows.items():
        cells = [f"{scores[key]:.3f}" for title, key in COLUMNS if title in header]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="zoo name or model file (repeat)")
    parser.add_argument("--work", type=Path, default=Path("outputs/shapes-robustness"))
    parser.add_argument("--scenes", type=int, default=200, help="scenes of each held-out renderer")
    parser.add_argument(
        "--original-scenes", type=int, default=200, help="scenes per acceptance seed (5 seeds)"
    )
    args = parser.parse_args()
    folders = heldout_folders(args.work, args.scenes)
    rows = {model: measure(load_model(model), folders, args.original_scenes) for model in args.model}
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "results.json").write_text(
        json.dumps({"args": vars(args) | {"work": str(args.work)}, "rows": rows}, indent=1)
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
