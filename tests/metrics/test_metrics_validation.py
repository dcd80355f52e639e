"""Bad inputs and arguments are rejected with errors that name the argument."""

from __future__ import annotations

import re

import pytest
import torch

from clipseg.metrics import FewShotMetrics, MattingErrors, ReferringSegMetrics, ZeroShotMetrics

PROBS = torch.rand(2, 4, 4)
MASK = torch.ones(2, 4, 4)
NAN = torch.where(torch.eye(4).bool(), torch.nan, 0.5).expand(2, 4, 4)
LABELS = torch.zeros(2, 4, 4, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: ReferringSegMetrics().update(PROBS[0], MASK[0]),
            ValueError,
            "`probs` must have shape B x H x W",
        ),
        (lambda: ReferringSegMetrics().update(PROBS, MASK[:1]), ValueError, "`target` has shape (1, 4, 4)"),
        (lambda: ReferringSegMetrics().update(NAN, MASK), ValueError, "`probs` contains NaN"),
        (
            lambda: ReferringSegMetrics().update(PROBS * 3, MASK),
            ValueError,
            "`probs` must lie in [0, 1] (pass from_logits",
        ),
        (lambda: ReferringSegMetrics(from_logits=True).update(NAN, MASK), ValueError, "`probs` contains NaN"),
        (lambda: ReferringSegMetrics().update(PROBS, MASK * 0.5), ValueError, "`target` must be binary"),
        (
            lambda: ReferringSegMetrics().update(PROBS > 0.5, MASK),
            TypeError,
            "`probs` must be a floating-point",
        ),
        (
            lambda: FewShotMetrics(3).update(PROBS, MASK, torch.tensor([0, 3])),
            ValueError,
            "`class_ids` must hold class indices in [0, 3)",
        ),
        (
            lambda: FewShotMetrics(3).update(PROBS, MASK, torch.tensor([0])),
            ValueError,
            "`class_ids` has shape (1,), expected (2,)",
        ),
        (
            lambda: FewShotMetrics(3).update(PROBS, MASK, torch.tensor([0.0, 1.0])),
            TypeError,
            "`class_ids` must be an integer",
        ),
        (
            lambda: ZeroShotMetrics(3, [0], [1]).update(LABELS.float(), LABELS),
            TypeError,
            "`pred_labels` must be an integer",
        ),
        (
            lambda: ZeroShotMetrics(3, [0], [1]).update(LABELS + 3, LABELS),
            ValueError,
            "`pred_labels` must hold class indices in [0, 3)",
        ),
        (
            lambda: ZeroShotMetrics(3, [0], [1]).update(LABELS, LABELS - 1),
            ValueError,
            "`target` must hold class indices in [0, 3) or the ignore_index 255",
        ),
        (
            lambda: ZeroShotMetrics(3, [0], [1]).update(LABELS, LABELS[:, :2]),
            ValueError,
            "`target` has shape (2, 2, 4)",
        ),
        (lambda: MattingErrors().update(PROBS, MASK * 2), ValueError, "`gt_alpha` must lie in [0, 1]"),
        (lambda: MattingErrors().update(PROBS, NAN), ValueError, "`gt_alpha` contains NaN"),
        (lambda: MattingErrors().update(PROBS - 1, MASK), ValueError, "`pred_alpha` must lie in [0, 1]"),
        (lambda: MattingErrors().update(PROBS, MASK, MASK * 0.3), ValueError, "`mask` must be binary"),
        (lambda: MattingErrors().update(PROBS, MASK, MASK[:1]), ValueError, "`mask` has shape (1, 4, 4)"),
        (
            lambda: ReferringSegMetrics(thresholds=(0.3, 0.3)),
            ValueError,
            "`thresholds` must be distinct values in [0, 1]",
        ),
        (
            lambda: ReferringSegMetrics(thresholds=(1.5,)),
            ValueError,
            "`thresholds` must be distinct values in [0, 1]",
        ),
        (lambda: ReferringSegMetrics(ap_thresholds=1), ValueError, "`ap_thresholds` must be an integer >= 2"),
        (lambda: FewShotMetrics(0), ValueError, "`num_classes` must be a positive integer"),
        (lambda: FewShotMetrics(2, threshold=2.0), ValueError, "`threshold` must lie in [0, 1]"),
        (lambda: ZeroShotMetrics(3, [0, 1], [1]), ValueError, "`seen` and `unseen` share classes [1]"),
        (lambda: ZeroShotMetrics(3, [0], [3]), ValueError, "`unseen` must be distinct class ids in [0, 3)"),
        (lambda: ZeroShotMetrics(3, [0], [1], ignore_index=2), ValueError, "`ignore_index` 2 is a class id"),
    ],
)
def test_rejected_with_a_clear_error(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_validate_args_false_skips_value_checks_only():
    metric = ReferringSegMetrics(validate_args=False)
    metric.update(PROBS * 3, MASK)  # would raise with validation
    with pytest.raises(ValueError, match="has shape"):
        metric.update(PROBS, MASK[:1])
