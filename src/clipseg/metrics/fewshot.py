"""Few-shot (one-shot) segmentation metrics: the PASCAL-5i / COCO-20i protocol."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from clipseg.metrics._common import BinarySegmentationMetric, binary_counts, fg_bg_iou
from clipseg.metrics._validation import Checks, expect_ndim, expect_same_shape


class FewShotMetrics(BinarySegmentationMetric):
    """PASCAL-5i / COCO-20i protocol (Shaban et al. 2017, Nguyen & Todorovic 2019; as in CLIPSeg and HSNet).

    One sample is one episode: a query image, the mask of the class its support (or prompt) shows, and that
    class's id. A pixel is foreground when ``prob > threshold``. ``compute()`` returns:

    - ``miou``: mean over classes of the per-class IoU, ΣTP / Σ(TP + FP + FN) over that class's episodes;
      classes without episodes are left out (NaN if there are none); a class whose episodes hold no
      foreground, predicted or true, has IoU 1;
    - ``fbiou``: mean of foreground and background IoU, each accumulated over all episodes;
    - ``ap``: binned average precision over all pixels (see
      :class:`~clipseg.metrics._common.BinarySegmentationMetric`).

    State: 4 counts per class and the AP bins; it does not grow with the number of episodes.

    Args:
        num_classes: number of class ids; ``class_ids`` lie in ``[0, num_classes)``.
        threshold: probability threshold of ``miou`` and ``fbiou``.
        kwargs: ``ap_thresholds``, ``from_logits``, ``validate_args`` and torchmetrics options, see
            :class:`~clipseg.metrics._common.BinarySegmentationMetric`.
    """

    def __init__(self, num_classes: int, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"`threshold` must lie in [0, 1], got {threshold}")
        self.num_classes = num_classes
        self.threshold = float(threshold)
        self.add_state("class_counts", torch.zeros(num_classes, 4, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor, class_ids: Tensor) -> None:
        """Add a batch of episodes.

        Args:
            probs: B x H x W foreground probabilities in [0, 1] (logits if ``from_logits``).
            target: B x H x W binary ground truth (bool, integer or float 0/1).
            class_ids: B integer class id of each episode.
        """
        expect_ndim("class_ids", class_ids, "B")
        expect_same_shape("class_ids", class_ids, "probs", probs.shape[:1])
        class_ids = class_ids.to(probs.device)
        checks = Checks(self.validate_args)
        checks.labels("class_ids", class_ids, self.num_classes)
        probs, target = self._accept(probs, target, checks)
        self.class_counts.index_add_(0, class_ids, binary_counts(probs > self.threshold, target))

    def compute(self) -> dict[str, Tensor]:
        """Return ``miou``, ``fbiou`` and ``ap``."""
        per_class, _ = fg_bg_iou(self.class_counts)
        evaluated = self.class_counts.sum(-1) > 0
        fg, bg = fg_bg_iou(self.class_counts.sum(0))
        return {
            "miou": per_class[evaluated].mean().float(),
            "fbiou": ((fg + bg) / 2).float(),
            "ap": self._ap().float(),
        }
