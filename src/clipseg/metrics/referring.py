"""Referring-expression segmentation metrics: the PhraseCut protocol of CLIPSeg."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from clipseg.metrics._common import (
    BinarySegmentationMetric,
    binary_counts,
    fg_bg_iou,
    fixed_point_mean,
    to_fixed_point,
)


def threshold_key(threshold: float) -> str:
    """Key suffix of a threshold: ``0.3`` for 0.3, also when it went through float32 (``0.30000001``)."""
    return f"{threshold:g}"


class ReferringSegMetrics(BinarySegmentationMetric):
    """PhraseCut protocol (Wu et al. 2020, as evaluated by CLIPSeg, Lüddecke & Ecker 2022).

    One sample is one (image, phrase) pair; every phrase is its own "class". For each threshold ``t`` a pixel is
    foreground when ``prob > t`` (strict, as in the CLIPSeg evaluation code) and ``compute()`` returns:

    - ``miou_{t}``: mean over samples of the per-sample IoU (1 for a sample whose target and prediction are
      both empty);
    - ``fgiou_{t}``: foreground IoU over the whole dataset, ΣTP / Σ(TP + FP + FN);
    - ``biniou_{t}``: mean of foreground and background IoU, each accumulated over the dataset;

    and ``ap``: binned average precision over all pixels of the dataset (see
    :class:`~clipseg.metrics._common.BinarySegmentationMetric`). CLIPSeg's own AP integrated 49 thresholds with
    Simpson's rule; the binned torchmetrics AP used here is close but not identical.

    Keys format the threshold with ``%g``: ``miou_0.3``, ``fgiou_0.5``, ``biniou_0.5``.

    State: 4 counts per threshold, the fixed-point IoU sum per threshold, a sample count and the AP bins; it
    does not grow with the number of samples.

    Args:
        thresholds: probability thresholds of the IoU keys, each in [0, 1].
        kwargs: ``ap_thresholds``, ``from_logits``, ``validate_args`` and torchmetrics options, see
            :class:`~clipseg.metrics._common.BinarySegmentationMetric`.
    """

    def __init__(self, thresholds: Sequence[float] = (0.3, 0.5), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thresholds = tuple(float(t) for t in thresholds)
        keys = [threshold_key(t) for t in self.thresholds]
        if (
            not self.thresholds
            or len(set(keys)) != len(keys)
            or not all(0 <= t <= 1 for t in self.thresholds)
        ):
            raise ValueError(f"`thresholds` must be distinct values in [0, 1], got {tuple(thresholds)}")
        num = len(self.thresholds)
        self.add_state("counts", torch.zeros(num, 4, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("iou_sum", torch.zeros(num, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("num_samples", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Add a batch.

        Args:
            probs: B x H x W foreground probabilities in [0, 1] (logits if ``from_logits``).
            target: B x H x W binary ground truth (bool, integer or float 0/1).
        """
        probs, target = self._accept(probs, target)
        # B x T x 4: TP, FP, FN, TN of each sample at each threshold
        counts = torch.stack([binary_counts(probs > t, target) for t in self.thresholds], dim=1)
        self.counts += counts.sum(0)
        self.iou_sum += to_fixed_point(fg_bg_iou(counts)[0]).sum(0)
        self.num_samples += counts.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """Return ``miou_{t}``, ``fgiou_{t}``, ``biniou_{t}`` for each threshold ``t``, and ``ap``."""
        miou = fixed_point_mean(self.iou_sum, self.num_samples)
        fg, bg = fg_bg_iou(self.counts)
        result: dict[str, Tensor] = {}
        for i, threshold in enumerate(self.thresholds):
            key = threshold_key(threshold)
            result[f"miou_{key}"] = miou[i].float()
            result[f"fgiou_{key}"] = fg[i].float()
            result[f"biniou_{key}"] = ((fg[i] + bg[i]) / 2).float()
        result["ap"] = self._ap().float()
        return result
