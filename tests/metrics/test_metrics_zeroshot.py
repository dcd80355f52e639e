"""ZeroShotMetrics (seen / unseen mIoU, harmonic mean) against the JoEm / ZS3Net evaluator formulas."""

from __future__ import annotations

import math

import metrics_reference as ref
import pytest
import torch

from clipseg.metrics import ZeroShotMetrics


@pytest.mark.parametrize("seed", [0, 1])
def test_random_labels_match_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(3):
        target = torch.randint(0, 7, (2, 9, 9), generator=gen)
        target[torch.rand(2, 9, 9, generator=gen) < 0.1] = 255
        noise = torch.randint(0, 7, (2, 9, 9), generator=gen)
        batches.append(
            (torch.where(torch.rand(2, 9, 9, generator=gen) < 0.6, target.clamp(max=6), noise), target)
        )
    seen, unseen = (0, 1, 2, 3), (4, 5)  # class 6 in neither group
    metric = ZeroShotMetrics(num_classes=7, seen=seen, unseen=unseen)
    pred, target = ref.run(metric, batches)
    ref.assert_matches(metric.compute(), ref.zeroshot(pred, target, 7, seen, unseen))


def test_hand_made():
    # 1 x 1 x 4: classes 0 (seen) and 2 (unseen); the last pixel is ignored
    metric = ZeroShotMetrics(num_classes=3, seen=(0, 1), unseen=(2,))
    metric.update(torch.tensor([[[0, 2, 2, 1]]]), torch.tensor([[[0, 0, 2, 255]]]))
    # class 0: 1/2; class 1 nowhere (its prediction on the ignored pixel does not count): left out; class 2: 1/2
    ref.assert_matches(metric.compute(), {"miou_seen": 0.5, "miou_unseen": 0.5, "harmonic": 0.5})


def test_edge_cases():
    zeros, ones = torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long)
    metric = ZeroShotMetrics(num_classes=2, seen=(0,), unseen=(1,))
    metric.update(zeros, ones)
    assert [v.item() for v in metric.compute().values()] == [0, 0, 0]
    # the unseen class nowhere: its mIoU is undefined, and so is the harmonic mean
    metric = ZeroShotMetrics(num_classes=2, seen=(0,), unseen=(1,))
    metric.update(zeros, zeros)
    result = metric.compute()
    assert result["miou_seen"] == 1 and math.isnan(result["miou_unseen"]) and math.isnan(result["harmonic"])


def test_no_ignore_index():
    metric = ZeroShotMetrics(num_classes=2, seen=(0,), unseen=(1,), ignore_index=None)
    metric.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 1]]]))
    assert metric.compute()["harmonic"] == 1
