"""Presence, instances and label maps of ``Predictor.segment`` on fresh shapes scenes (issue 34).

    python bench/presence_bench.py [--model shapes-tiny] [--scenes 600] [--seed 9001]

Presence: each scene's own phrase (``draw_sample``; 20 % name an absent color + shape, empty mask):
AUROC, recall and false-found rate at 0.5, expected calibration error (10 bins), calibrated vs the
max-probability baseline. Instances: scenes with 1-3 copies of one color + shape among other objects;
exact count of ``Segmentation.instances`` vs naive connected components (same ``--min-area``).
Label maps: every object's "color shape" prompted at once; mIoU of ``labels`` vs the true map.
Seeds differ from the calibration's (``clipseg calibrate`` on ``clipseg prepare shapes``: seed 0) and
from the ones the settings were chosen on (presence L2: 7001, 7004; instances: 7002, 7003).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import ndimage

from clipseg.data.shapes.drawing import free_spot, plain_background, rasterize
from clipseg.data.shapes.scenes import COLORS, RADIUS, SHAPES, SIZES, draw_sample
from clipseg.inference.presence import presence
from clipseg.inference.segment import find_instances
from clipseg.zoo import load_model

SIZE = 128  # shapes-tiny's scene size (configs/shapes-tiny.yaml)


def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Probability that a present example outscores an absent one (ties count half)."""
    pos, neg = scores[truth], scores[~truth]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def ece(scores: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: bin-weighted |mean score - fraction present|."""
    index = np.minimum((scores * bins).astype(int), bins - 1)
    return float(
        sum(
            abs(scores[index == b].mean() - truth[index == b].mean()) * (index == b).mean()
            for b in range(bins)
            if (index == b).any()
        )
    )


def presence_rows(predictor, scenes: int, seed: int) -> dict[str, dict[str, float]]:
    maps, summaries, truth = [], [], []
    for i in range(scenes):
        sample, _ = draw_sample(seed, i, split="val")
        probs, pooled = predictor.predict_pooled(sample["image"], [sample["text"]])
        maps.append(probs[0])
        summaries.append(None if pooled is None else pooled[0])
        truth.append(bool(sample["mask"].any()))
    probs, truth = np.stack(maps), np.array(truth)
    pooled = None if summaries[0] is None else np.stack(summaries)
    rows = {}
    # "calibrated" is what Predictor.segment reports (the head where the model has one); "map_only"
    # the same calibration without the decoder's summary (the form before the head, and the fallback).
    options = (("calibrated", predictor.calibration, pooled), ("map_only", predictor.calibration, None))
    for name, calibration, summary in (*options, ("max_prob", None, None)):
        scores = presence(probs, calibration, summary)
        found = scores >= 0.5
        rows[name] = {
            "auroc": auroc(scores, truth),
            "recall": float(found[truth].mean()),
            "false_found": float(found[~truth].mean()),
            "ece": ece(scores, truth),
        }
    rows["counts"] = {"present": int(truth.sum()), "absent": int((~truth).sum())}
    return rows


def copies_scene(rng: np.random.Generator, copies: int) -> tuple[np.ndarray, str, int, list]:
    """A scene with ``copies`` objects of one color + shape and 0-2 others: image, phrase, copies, objects."""
    image = plain_background(rng, SIZE)
    target = (str(rng.choice(list(COLORS))), str(rng.choice(SHAPES)))
    others = [p for p in ((c, s) for c in COLORS for s in SHAPES) if p != target]
    kinds = [target] * copies + [others[j] for j in rng.choice(len(others), int(rng.integers(0, 3)))]
    placed, objects = [], []
    for color, shape in kinds:
        r = rng.uniform(*RADIUS[str(rng.choice(SIZES))]) * SIZE
        spot = free_spot(rng, r, SIZE, placed)
        if spot is None:
            return copies_scene(rng, copies)
        placed.append((*spot, r))
        coverage = rasterize(shape, *spot, r, rng.uniform(-0.25, 0.25), SIZE)
        image[coverage] = COLORS[color]
        objects.append(((color, shape), coverage))
    return image, f"{target[0]} {target[1]}", copies, objects


def instance_rows(predictor, scenes: int, seed: int, min_area: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    exact = naive = 0
    ious = []
    for i in range(scenes):
        image, phrase, copies, objects = copies_scene(rng, 1 + i % 3)
        prob = predictor.predict(image, [phrase])[0]
        exact += len(find_instances(prob, 0, min_area=min_area)) == copies
        components, _ = ndimage.label(prob >= 0.5, structure=np.ones((3, 3)))
        naive += int((np.bincount(components.ravel())[1:] >= max(min_area, 1)).sum()) == copies
        # Label map: every distinct object kind of the scene prompted at once.
        kinds = list(dict.fromkeys(kind for kind, _ in objects))
        truth = np.zeros((SIZE, SIZE), np.int32)
        for kind, coverage in objects:
            truth[coverage] = kinds.index(kind) + 1
        labels = predictor.segment(image, [f"{c} {s}" for c, s in kinds]).labels
        for k in range(1, len(kinds) + 1):
            union = ((labels == k) | (truth == k)).sum()
            ious.append(((labels == k) & (truth == k)).sum() / union)
    return {
        "count_exact": exact / scenes,
        "naive_count_exact": naive / scenes,
        "label_miou": float(np.mean(ious)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes-tiny")
    parser.add_argument("--scenes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=9001)
    # 50 px (0.3 % of a 128 px scene): chosen on scenes of seeds 7002 and 7003 (exact count 0.910 / 0.930
    # at 50, 0.892 / 0.926 at 20, flat to 60, lower at 80), not on the reported seed.
    parser.add_argument("--min-area", type=int, default=50)
    args = parser.parse_args()
    predictor = load_model(args.model, device="cpu")
    result = {
        "model": args.model,
        "calibrated": predictor.calibration is not None,
        "presence": presence_rows(predictor, args.scenes, args.seed),
        "instances": instance_rows(predictor, args.scenes // 2, args.seed + 1, args.min_area),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
