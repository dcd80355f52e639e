"""How sharp are full-resolution masks? mIoU, boundary IoU, matting errors and time, per refinement.

Scenes come from ``clipseg.data.shapes.hires``: 512² images with 30–70 px objects and anti-aliased
edges (segmentation), or soft, blurred alpha edges (matting, like RefMatte's composites). Each
variant (``none``, ``guided``, ``tiles``, ``tiles+guided``) runs ``Predictor.predict`` on the same
scenes with the prompt naming one object's color + shape.

- mIoU@0.5: IoU of ``prob > 0.5`` with ``alpha >= 0.5``, averaged over scenes.
- boundary IoU (Cheng et al., "Boundary IoU", CVPR 2021): the same IoU restricted to the inner
  bands of width ``d`` along the contours of prediction and target; ``d`` is
  ``BOUNDARY_FRACTION`` of the image diagonal (0.5 %: about 4 px at 512², since the objects are
  small; the paper's 2 % would cover them whole).
- matting: SAD / MSE / MAD / Grad of ``clipseg.metrics.MattingErrors`` on the soft scenes.
- ms per image: wall time of ``predict`` (model, upsampling and refinement), mean over scenes.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from clipseg.data.shapes.hires import HiresShapesConfig, hires_scene
from clipseg.eval.quality import iou
from clipseg.inference import Predictor

# Streams of scenes never used for choosing the defaults are drawn from other seeds.
REFINE_SEED = 20_261_202
BOUNDARY_FRACTION = 0.005
VARIANTS: dict[str, dict] = {
    "none": {"refine": "none", "tiles": False},
    "guided": {"refine": "guided", "tiles": False},
    "tiles": {"refine": "none", "tiles": True},
    "tiles+guided": {"refine": "guided", "tiles": True},
}
SOFT_EDGE_SIGMA = 2.0


def inner_band(mask: np.ndarray, width: int) -> np.ndarray:
    """``H x W`` bool: the pixels of ``mask`` within ``width`` px (chessboard) of its contour."""
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=width, border_value=0)
    return mask & ~eroded


def boundary_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Boundary IoU of two ``H x W`` bool masks, band width ``BOUNDARY_FRACTION`` of the diagonal."""
    width = max(1, round(BOUNDARY_FRACTION * float(np.hypot(*pred.shape))))
    return iou(inner_band(pred, width), inner_band(target, width))


def _timed_predict(
    predictor: Predictor, image: np.ndarray, text: str, options: dict
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    prob = predictor.predict(image, text, **options)[0]
    return prob, time.perf_counter() - start


def segmentation_quality(
    predictor: Predictor,
    *,
    n: int = 100,
    seed: int = REFINE_SEED,
    config: HiresShapesConfig | None = None,
    variants: tuple[str, ...] = tuple(VARIANTS),
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """``{variant: {"miou", "boundary_iou", "ms_per_image"}}`` over ``n`` anti-aliased scenes (default config)."""
    config = config or HiresShapesConfig()
    scores = {v: {"miou": [], "boundary_iou": [], "seconds": []} for v in variants}
    for index in tqdm(range(n), desc="refine quality", disable=not progress):
        scene = hires_scene(seed, index, config)
        target = scene["alpha"] >= 0.5
        for variant in variants:
            prob, seconds = _timed_predict(predictor, scene["image"], scene["text"], VARIANTS[variant])
            scores[variant]["miou"].append(iou(prob > 0.5, target))
            scores[variant]["boundary_iou"].append(boundary_iou(prob > 0.5, target))
            scores[variant]["seconds"].append(seconds)
    return {
        v: {
            "miou": float(np.mean(s["miou"])),
            "boundary_iou": float(np.mean(s["boundary_iou"])),
            "ms_per_image": 1000 * float(np.mean(s["seconds"])),
        }
        for v, s in scores.items()
    }


def matting_quality(
    predictor: Predictor,
    *,
    n: int = 50,
    seed: int = REFINE_SEED,
    config: HiresShapesConfig | None = None,
    variants: tuple[str, ...] = ("none", "guided"),
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """``{variant: {"sad", "mse", "mad", "grad"}}`` (``MattingErrors``) over ``n`` soft-edged scenes.

    ``config`` defaults to the segmentation scenes with alpha blurred by ``SOFT_EDGE_SIGMA`` px.
    """
    import torch

    from clipseg.metrics import MattingErrors

    config = config or HiresShapesConfig(edge_sigma=SOFT_EDGE_SIGMA)
    metrics = {v: MattingErrors() for v in variants}
    for index in tqdm(range(n), desc="matting quality", disable=not progress):
        scene = hires_scene(seed, index, config)
        gt = torch.from_numpy(scene["alpha"])[None]
        for variant in variants:
            prob = predictor.predict(scene["image"], scene["text"], **VARIANTS[variant])[0]
            metrics[variant].update(torch.from_numpy(prob)[None], gt)
    return {
        v: {k: float(value) for k, value in m.compute().items() if k != "conn"} for v, m in metrics.items()
    }
