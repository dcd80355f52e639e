"""Hard absent prompts on plain shapes scenes: how often a model calls present a shape the scene lacks in
a colour it has (a red square on a scene with a red circle), next to the recall of present prompts.

    OMP_NUM_THREADS=1 python bench/shapes_hard_absent.py --model outputs/shapes-tiny-v2.safetensors --model shapes-tiny

Scenes of the original renderer (``shapes.make_scene``, 128 px, 1-4 objects, seed 9100, never used in
training nor calibration); per scene one drawn object's "colour shape" and the same colour with a shape
missing in it; calibrated ``Predictor.segment`` presence > 0.5. ``bench/presence_bench.py``'s
false-found rate mixes these with absent prompts of other colours. Not a ``*_bench.py``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from clipseg.data.shapes.scenes import SHAPES, make_scene
from clipseg.zoo import load_model


def hard_pairs(n: int, seed: int) -> list[tuple[np.ndarray, str, str]]:
    """``(image H x W x 3 uint8, present prompt, hard absent prompt)`` of up to ``n`` scenes (those where
    the chosen object's colour lacks some shape)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        image, objects = make_scene(rng, 128, int(rng.integers(1, 5)))
        have = {(o.color, o.shape) for o in objects}
        target = objects[int(rng.integers(len(objects)))]
        missing = [s for s in SHAPES if (target.color, s) not in have]
        if missing:
            absent = missing[int(rng.integers(len(missing)))]
            pairs.append((image, f"{target.color} {target.shape}", f"{target.color} {absent}"))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="zoo name or model file (repeat)")
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=9100)
    args = parser.parse_args()
    pairs = hard_pairs(args.scenes, args.seed)
    for name in args.model:
        predictor = load_model(name, device="cpu")
        found = np.array([predictor.segment(image, [p, a]).presence > 0.5 for image, p, a in pairs])
        print(
            f"{name}: {len(pairs)} scenes, recall {found[:, 0].mean():.3f}, hard absent found {found[:, 1].mean():.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
