"""Arithmetic shared by the metrics: exact fixed-point sums, confusion counts, IoU and binned AP.

Every metric state is a fixed-size ``int64`` tensor reduced with ``sum``. Integer sums are associative, so the
result does not depend on batch sizes, update order or the number of DDP processes: N processes give bit for bit
the single-process result. Per-sample quantities (an IoU, a matting error) are added as fixed-point integers
with a resolution of 2^-24 (about 6e-8 per sample) for the same reason; a float sum would differ in its last
bits between a split and an unsplit dataset. An ``int64`` sum holds values up to 2^39 (5e11) in total: 5e11
IoUs, or 1e8 images of a SAD of 5000.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

# The private helpers behind torchmetrics' BinaryAveragePrecision(thresholds=K). A child metric object would not
# be reset, merged by forward() or synced together with its parent; its state layout and these helpers keep our
# AP identical to torchmetrics' binned AP.
from torchmetrics.functional.classification.average_precision import _binary_average_precision_compute
from torchmetrics.functional.classification.precision_recall_curve import (
    _binary_precision_recall_curve_update,
)

from clipseg.metrics._validation import Checks, expect_ndim, expect_same_shape

FIXED_POINT_SCALE = 2**24
"""Per-sample values are summed as integer multiples of ``1 / FIXED_POINT_SCALE``."""


def to_fixed_point(values: Tensor) -> Tensor:
    """Round float values to ``int64`` multiples of ``1 / FIXED_POINT_SCALE`` (same shape)."""
    return torch.round(values.double() * FIXED_POINT_SCALE).long()


def fixed_point_mean(total: Tensor, count: Tensor) -> Tensor:
    """Mean of values whose fixed-point sum is ``total`` (any shape) over ``count`` samples; NaN if none."""
    return total.double() / FIXED_POINT_SCALE / count.double()


def binary_counts(pred: Tensor, target: Tensor) -> Tensor:
    """Confusion counts of each sample.

    Args:
        pred: B x H x W bool prediction.
        target: B x H x W bool ground truth.

    Returns:
        B x 4 int64: TP, FP, FN, TN of each sample.
    """
    tp = (pred & target).sum((1, 2))
    fp = pred.sum((1, 2)) - tp
    fn = target.sum((1, 2)) - tp
    tn = pred.shape[1] * pred.shape[2] - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=1)


def iou(intersection: Tensor, errors: Tensor) -> Tensor:
    """``intersection / (intersection + errors)`` in float64, 1 where the union is empty (nothing to find, and
    nothing found)."""
    union = intersection + errors
    return torch.where(union > 0, intersection.double() / union.clamp(min=1), 1.0)


def fg_bg_iou(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Foreground and background IoU from ``... x 4`` counts (TP, FP, FN, TN); each of shape ``...``."""
    tp, fp, fn, tn = counts.unbind(-1)
    return iou(tp, fp + fn), iou(tn, fp + fn)


class BinarySegmentationMetric(Metric):
    """Base of the metrics on binary masks: input checks, optional logits, and AP over all pixels.

    AP is torchmetrics' binned binary average precision (``BinaryAveragePrecision(thresholds=ap_thresholds)``):
    a ``ap_thresholds x 2 x 2`` confusion matrix at ``ap_thresholds`` evenly spaced thresholds in [0, 1]
    (a pixel counts as positive when ``prob >= threshold``), then the step-wise area under the
    precision-recall curve. With no positive pixel at all, AP is 0.

    Args:
        ap_thresholds: number of AP thresholds (bins).
        from_logits: ``update`` receives logits, squashed with a sigmoid.
        validate_args: check input values (NaN, range, binary targets); costs one device-to-host sync per
            ``update``. Shapes and dtypes are always checked.
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``process_group``, ``sync_on_compute``).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        *,
        ap_thresholds: int = 101,
        from_logits: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(ap_thresholds, bool) or not isinstance(ap_thresholds, int) or ap_thresholds < 2:
            raise ValueError(f"`ap_thresholds` must be an integer >= 2, got {ap_thresholds!r}")
        self.ap_thresholds = ap_thresholds
        self.from_logits = from_logits
        self.validate_args = validate_args
        self.add_state("ap_confmat", torch.zeros(ap_thresholds, 2, 2, dtype=torch.long), dist_reduce_fx="sum")

    def _ap_grid(self, device: torch.device) -> Tensor:
        # Made where it is used, not kept as a buffer: `.half()` on a parent module would round a buffer.
        return torch.linspace(0, 1, self.ap_thresholds, device=device)

    def _accept(self, probs: Tensor, target: Tensor, checks: Checks | None = None) -> tuple[Tensor, Tensor]:
        """Check a batch, add it to the AP bins, return probabilities and the target as bool (B x H x W).

        ``checks`` may carry the caller's own value checks, so that all are raised after one sync.
        """
        expect_ndim("probs", probs, "B x H x W")
        expect_same_shape("target", target, "probs", probs.shape)
        if checks is None:
            checks = Checks(self.validate_args)
        probs = checks.probabilities("probs", probs, from_logits=self.from_logits)
        checks.binary("target", target)
        checks.raise_first_failure()
        target = target.bool()
        grid = self._ap_grid(probs.device)
        self.ap_confmat += _binary_precision_recall_curve_update(probs.flatten(), target.flatten(), grid)
        return probs, target

    def _ap(self) -> Tensor:
        return _binary_average_precision_compute(self.ap_confmat, self._ap_grid(self.ap_confmat.device))
