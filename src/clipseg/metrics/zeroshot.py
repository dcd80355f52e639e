"""Zero-shot semantic segmentation metrics: seen / unseen mIoU and their harmonic mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from clipseg.metrics._validation import Checks, expect_ndim, expect_same_shape


class ZeroShotMetrics(Metric):
    """Zero-shot segmentation protocol (ZS3Net, Bucher et al. 2019; SPNet; JoEm, as used by CLIPSeg on
    PASCAL VOC).

    Per-class IoU over the whole dataset, intersection / union of the predicted and true pixels of that class,
    from a pixel-wise argmax prediction; pixels whose target is ``ignore_index`` are left out. ``compute()``
    returns:

    - ``miou_seen``, ``miou_unseen``: mean IoU over the ``seen`` / ``unseen`` classes; a class that neither
      occurs nor is predicted anywhere in the dataset is left out (NaN if a group has none);
    - ``harmonic``: harmonic mean of the two (0 when both are 0).

    State: intersection, predicted area and true area per class; it does not grow with the number of images.

    Args:
        num_classes: number of classes C; labels lie in ``[0, C)``.
        seen: class ids seen in training.
        unseen: class ids held out of training; disjoint from ``seen``.
        ignore_index: target label of pixels to leave out (``None``: none), outside ``[0, C)``.
        validate_args: check label values; costs one device-to-host sync per ``update``.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        seen: Sequence[int],
        unseen: Sequence[int],
        ignore_index: int | None = 255,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}")
        self.seen = tuple(int(c) for c in seen)
        self.unseen = tuple(int(c) for c in unseen)
        for name, group in (("seen", self.seen), ("unseen", self.unseen)):
            if not group or len(set(group)) != len(group) or not all(0 <= c < num_classes for c in group):
                raise ValueError(f"`{name}` must be distinct class ids in [0, {num_classes}), got {group}")
        if set(self.seen) & set(self.unseen):
            raise ValueError(f"`seen` and `unseen` share classes {sorted(set(self.seen) & set(self.unseen))}")
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise ValueError(
                f"`ignore_index` {ignore_index} is a class id; it must lie outside [0, {num_classes})"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        for state in ("intersection", "pred_area", "target_area"):
            self.add_state(state, torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def _class_areas(self, labels: Tensor, where: Tensor) -> Tensor:
        """C pixel counts of each label where ``where`` holds (others go to an extra bin, so no sync)."""
        binned = torch.where(where, labels, self.num_classes).flatten()
        return torch.bincount(binned, minlength=self.num_classes + 1)[: self.num_classes]

    def update(self, pred_labels: Tensor, target: Tensor) -> None:
        """Add a batch.

        Args:
            pred_labels: B x H x W predicted class per pixel (integer, e.g. ``logits.argmax(1)``).
            target: B x H x W true class per pixel (integer), or ``ignore_index``.
        """
        expect_ndim("pred_labels", pred_labels, "B x H x W")
        expect_same_shape("target", target, "pred_labels", pred_labels.shape)
        checks = Checks(self.validate_args)
        checks.labels("pred_labels", pred_labels, self.num_classes)
        checks.labels("target", target, self.num_classes, self.ignore_index)
        checks.raise_first_failure()
        valid = (
            torch.ones_like(target, dtype=torch.bool)
            if self.ignore_index is None
            else target != self.ignore_index
        )
        self.intersection += self._class_areas(target, valid & (pred_labels == target))
        self.pred_area += self._class_areas(pred_labels, valid)
        self.target_area += self._class_areas(target, valid)

    def compute(self) -> dict[str, Tensor]:
        """Return ``miou_seen``, ``miou_unseen`` and ``harmonic``."""
        union = self.pred_area + self.target_area - self.intersection
        iou = torch.where(union > 0, self.intersection.double() / union.clamp(min=1), torch.nan)
        seen = iou[list(self.seen)].nanmean()
        unseen = iou[list(self.unseen)].nanmean()
        total = seen + unseen
        harmonic = torch.where(total == 0, 0.0, 2 * seen * unseen / total)  # NaN stays NaN
        return {"miou_seen": seen.float(), "miou_unseen": unseen.float(), "harmonic": harmonic.float()}
