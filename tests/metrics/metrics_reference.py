"""Straightforward numpy reference formulas for the metrics tests (loops over samples, no tricks), and the
helpers that feed batches to a metric and compare its results."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchmetrics import Metric


def run(metric: Metric, batches: Sequence[tuple[torch.Tensor, ...]]) -> list[np.ndarray]:
    """Update ``metric`` with each batch; return each update argument concatenated over batches, in numpy."""
    for batch in batches:
        metric.update(*batch)
    return [torch.cat(parts).numpy() for parts in zip(*batches)]


def assert_matches(result: dict[str, torch.Tensor], expected: dict[str, float], rel: float = 0.0) -> None:
    """Same keys in the same order; values equal up to float32 rounding (and ``rel``)."""
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert result[key].item() == pytest.approx(value, rel=rel, abs=1e-6), key


def assert_identical(result: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Same keys in the same order; bit-identical values."""
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert torch.equal(result[key], value), (key, result[key].item(), value.item())


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """|pred ∧ target| / |pred ∨ target| of bool arrays; 1 if both are empty."""
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else np.logical_and(pred, target).sum() / union


def binned_ap(probs: np.ndarray, target: np.ndarray, num_thresholds: int = 101) -> float:
    """Step-wise area under the precision-recall curve at evenly spaced thresholds (prob >= t is positive)."""
    p, g = probs.ravel(), target.ravel().astype(bool)
    precision, recall = [], []
    for t in np.linspace(0, 1, num_thresholds, dtype=np.float32):
        pos = p >= t
        tp, fp, fn = (pos & g).sum(), (pos & ~g).sum(), (~pos & g).sum()
        precision.append(tp / (tp + fp) if tp + fp else 0.0)
        recall.append(tp / (tp + fn) if tp + fn else 0.0)
    precision.append(1.0)
    recall.append(0.0)
    return -sum((recall[i + 1] - recall[i]) * precision[i] for i in range(num_thresholds))


def referring(probs: np.ndarray, target: np.ndarray, thresholds=(0.3, 0.5)) -> dict[str, float]:
    out = {}
    target = target.astype(bool)
    for t in thresholds:
        pred = probs > t
        out[f"miou_{t}"] = np.mean([iou(p, g) for p, g in zip(pred, target)])
        out[f"fgiou_{t}"] = iou(pred, target)
        out[f"biniou_{t}"] = (iou(pred, target) + iou(~pred, ~target)) / 2
    out["ap"] = binned_ap(probs, target)
    return out


def fewshot(probs: np.ndarray, target: np.ndarray, class_ids: np.ndarray, threshold=0.5) -> dict[str, float]:
    target = target.astype(bool)
    pred = probs > threshold
    per_class = [iou(pred[class_ids == c], target[class_ids == c]) for c in np.unique(class_ids)]
    return {
        "miou": np.mean(per_class),
        "fbiou": (iou(pred, target) + iou(~pred, ~target)) / 2,
        "ap": binned_ap(probs, target),
    }


def zeroshot(pred, target, num_classes, seen, unseen, ignore_index=255) -> dict[str, float]:
    """The JoEm / ZS3Net evaluator: confusion matrix, per-class IoU, nanmean over seen and unseen classes."""
    valid = target != ignore_index
    confusion = np.zeros((num_classes, num_classes))
    np.add.at(confusion, (target[valid], pred[valid]), 1)
    diag = np.diag(confusion)
    with np.errstate(invalid="ignore"):
        per_class = diag / (confusion.sum(0) + confusion.sum(1) - diag)
    s, u = np.nanmean(per_class[list(seen)]), np.nanmean(per_class[list(unseen)])
    return {"miou_seen": s, "miou_unseen": u, "harmonic": 2 * s * u / (s + u) if s + u else 0.0}


def _dim_gaussgradient(image: np.ndarray, sigma: float = 1.4) -> tuple[np.ndarray, np.ndarray]:
    """gaussgradient of the DIM evaluation code: 2-D Gaussian-derivative kernel with unit L2 norm."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    size = 2 * half + 1

    def gauss(x):
        return math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))

    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            hx[i, j] = gauss(i - half) * -(j - half) * gauss(j - half) / sigma**2
    hx /= np.sqrt((hx**2).sum())
    return ndimage.convolve(image, hx, mode="nearest"), ndimage.convolve(image, hx.T, mode="nearest")


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    gx, gy = _dim_gaussgradient(image)
    return np.sqrt(gx**2 + gy**2)


def connectivity_map(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> np.ndarray:
    """compute_connectivity_error of the DIM evaluation code (MATLAB), without the final sum."""
    levels = np.linspace(0, 1, round(1 / step) + 1)
    l_map = -np.ones(pred.shape)
    for i in range(1, len(levels)):
        labels, count = ndimage.label((pred >= levels[i]) & (gt >= levels[i]))
        omega = np.zeros(pred.shape, dtype=bool)
        if count:
            sizes = [(labels == k).sum() for k in range(1, count + 1)]
            omega = labels == 1 + int(np.argmax(sizes))
        l_map[(l_map == -1) & ~omega] = levels[i - 1]
    l_map[l_map == -1] = 1
    pred_d, gt_d = pred - l_map, gt - l_map
    pred_phi = 1 - pred_d * (pred_d >= 0.15)
    gt_phi = 1 - gt_d * (gt_d >= 0.15)
    return np.abs(pred_phi - gt_phi)


def matting(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """DIM errors of each image over the mask (whole image if none), averaged over images."""
    rows = []
    for i in range(len(pred)):
        p, g = pred[i].astype(np.float64), gt[i].astype(np.float64)
        m = np.ones(p.shape, dtype=bool) if mask is None else mask[i].astype(bool)
        n = m.sum()
        grad_err = (gradient_magnitude(p) - gradient_magnitude(g)) ** 2
        rows.append(
            [
                np.abs(p - g)[m].sum() / 1000,
                ((p - g) ** 2)[m].sum() / n if n else 0.0,
                np.abs(p - g)[m].sum() / n if n else 0.0,
                grad_err[m].sum() / 1000,
                connectivity_map(p, g)[m].sum() / 1000,
            ]
        )
    return dict(zip(("sad", "mse", "mad", "grad", "conn"), np.mean(rows, axis=0)))
