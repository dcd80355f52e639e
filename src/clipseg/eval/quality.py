"""Quality check of a model on fresh shapes scenes: the acceptance numbers of the shipped model.

Three prompt kinds, each on scenes from a seed never used in training:
- text: a color + shape that is present ("red circle") → IoU of the thresholded prediction;
- absent: a color + shape that is not in the scene → fraction of pixels marked (should be ~0);
- visual: a support image showing the same color + shape in another scene (with its mask) → IoU;
- swapped: the color + shape of another object in the same scene, scored against the first prompt's
  target. A prompt-blind model that marks every object scores about as well here as on "text"; one
  that reads the prompt scores far lower. Text mIoU alone cannot tell the two apart.

``text_miou_shared_color`` is the text mIoU over the scenes where another object has the target's
color but another shape: a model that reads only the color word marks both and scores low there.

``shapes_quality_over_seeds`` repeats it on several seeds and reports each score's mean and worst
seed: one seed's 120 scenes move text mIoU by about ±0.02, as much as a preprocessing change, so
the acceptance bars apply to the mean over ``QUALITY_SEEDS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm  # not tqdm.auto: without ipywidgets it warns in every notebook

from clipseg.core.prompts import Prompt
from clipseg.data.folder import annotation_file, read_lines
from clipseg.data.shapes.scenes import ShapesConfig, draw_sample, phrase_for
from clipseg.data.user_data import read_binary_mask
from clipseg.inference import Predictor

# Training streams use seeds derived from small integers; this one is reserved for acceptance checks.
QUALITY_SEED = 20_261_126
# Acceptance seeds (the reserved one and the next four, also never used in training) and scenes per seed.
QUALITY_SEEDS = tuple(QUALITY_SEED + k for k in range(5))
QUALITY_SCENES = 200


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU of two ``H x W`` bool masks (1 when both are empty)."""
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def shapes_quality(
    predictor: Predictor,
    *,
    n: int = 200,
    seed: int = QUALITY_SEED,
    size: int = 128,
    threshold: float = 0.5,
    progress: bool = True,
) -> dict[str, float]:
    """Mean IoU of text, visual and swapped prompts and the marked-pixel fraction of absent prompts.

    Over ``n`` scenes each (swapped: over those of them with a second color + shape).
    """
    base = ShapesConfig(size=size, negative_prob=0.0, visual_prob=1.0)
    text_iou, visual_iou, swapped_iou, absent_frac, shared_color = [], [], [], [], []
    for i in tqdm(range(n), desc="shapes quality", disable=not progress):
        sample, support = draw_sample(seed, i, split="test", config=base)
        assert support is not None  # visual_prob=1 always attaches a support scene
        query = sample["meta"]["query"]
        pairs = [(c, s) for c, s, *_ in sample["meta"]["objects"]]
        other = next((p for p in pairs if p != (query["color"], query["shape"])), None)
        prompts = [Prompt(text=sample["text"]), Prompt(image=support[0], mask=support[1])]
        if other is not None:
            prompts.append(Prompt(text=phrase_for({"color": other[0], "shape": other[1]})))
        probs = predictor.predict(sample["image"], prompts)
        target = sample["mask"] > 0.5
        # probs: text, visual and (when the scene has another color + shape) swapped.
        for scores, prob in zip((text_iou, visual_iou, swapped_iou), probs):
            scores.append(iou(prob > threshold, target))
        if any(c == query["color"] and s != query["shape"] for c, s in pairs):
            shared_color.append(text_iou[-1])
        negative, _ = draw_sample(seed, i, split="test", config=replace(base, negative_prob=1.0))
        absent = predictor.predict(negative["image"], negative["text"])[0]
        absent_frac.append(float((absent > threshold).mean()))
    return {
        "text_miou": float(np.mean(text_iou)),
        "visual_miou": float(np.mean(visual_iou)),
        "swapped_miou": float(np.mean(swapped_iou)),
        "absent_marked_fraction": float(np.mean(absent_frac)),
        "text_miou_shared_color": float(np.mean(shared_color)) if shared_color else float("nan"),
        "n_shared_color": len(shared_color),
        "n": n,
        "seed": seed,
        "threshold": threshold,
    }


# Scores summarised over seeds, with what makes a seed worse: a lower IoU or a higher wrong overlap.
_WORSE = {
    "text_miou": min,
    "visual_miou": min,
    "swapped_miou": max,
    "absent_marked_fraction": max,
    "text_miou_shared_color": min,
}


def shapes_quality_over_seeds(
    predictor: Predictor,
    *,
    seeds: Sequence[int] = QUALITY_SEEDS,
    n: int = QUALITY_SCENES,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """``shapes_quality`` on ``n`` scenes of each seed: each score's mean over the seeds, its worst seed.

    Returns ``{score: mean, f"{score}_worst": value on the worst seed, "seeds", "n", "per_seed"}``;
    ``options`` (``size``, ``threshold``) go to ``shapes_quality``.
    """
    per_seed = [
        shapes_quality(predictor, n=n, seed=seed, progress=progress, **options)
        for seed in tqdm(seeds, desc="seeds", disable=not progress)
    ]
    summary: dict[str, Any] = {}
    for key, worse in _WORSE.items():
        values = [scores[key] for scores in per_seed if not np.isnan(scores[key])]
        summary[key] = float(np.mean(values)) if values else float("nan")
        summary[f"{key}_worst"] = float(worse(values)) if values else float("nan")
    return summary | {"seeds": list(seeds), "n": n, "per_seed": per_seed}


def folder_quality(
    predictor: Predictor, src: str | Path, *, threshold: float = 0.5, progress: bool = True
) -> dict[str, float]:
    """Text mIoU of the rows of an annotated folder (``clipseg prepare folder``'s input format).

    Rows with an empty mask are absent-object prompts: they are scored by the fraction of pixels the
    model marks (should be ~0) instead of IoU. Each image is encoded once for all its prompts.
    """
    lines = read_lines(annotation_file(Path(src)))
    root = annotation_file(Path(src)).parent
    by_image: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        by_image.setdefault(line.image, []).append((line.prompt, line.mask))
    text_iou, absent_frac = [], []
    for image, rows in tqdm(by_image.items(), desc="folder quality", disable=not progress):
        probs = predictor.predict(root / image, [prompt for prompt, _ in rows])
        for prob, (_, mask_name) in zip(probs, rows):
            target = read_binary_mask(root / mask_name, mask_name)
            if target.any():
                text_iou.append(iou(prob > threshold, target))
            else:
                absent_frac.append(float((prob > threshold).mean()))
    return {
        "text_miou": float(np.mean(text_iou)) if text_iou else float("nan"),
        "absent_marked_fraction": float(np.mean(absent_frac)) if absent_frac else float("nan"),
        "n_text": len(text_iou),
        "n_absent": len(absent_frac),
        "threshold": threshold,
    }
