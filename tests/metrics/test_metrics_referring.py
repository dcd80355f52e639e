"""ReferringSegMetrics (PhraseCut protocol) against numpy reference formulas."""

from __future__ import annotations

import metrics_reference as ref
import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_average_precision

from clipseg.metrics import ReferringSegMetrics


def _random_batches(
    seed: int, batch_sizes: tuple[int, ...] = (3, 1, 6), size: int = 12
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of unequal sizes, so that a count kept per batch differs from one kept per sample."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for batch_size in batch_sizes:
        probs = torch.rand(batch_size, size, size, generator=gen)
        # targets correlated with the probabilities, so that IoU and AP are neither 0 nor 1
        target = (probs + 0.6 * torch.rand(batch_size, size, size, generator=gen)) > 0.8
        batches.append((probs, target))
    return batches


def _result(probs: torch.Tensor, target: torch.Tensor, thresholds=(0.3, 0.5)) -> dict[str, torch.Tensor]:
    metric = ReferringSegMetrics(thresholds=thresholds)
    metric.update(probs, target)
    return metric.compute()


@pytest.mark.parametrize("seed", [0, 1])
def test_random_batches_match_reference(seed):
    metric = ReferringSegMetrics(thresholds=(0.3, 0.5))
    probs, target = ref.run(metric, _random_batches(seed))
    ref.assert_matches(metric.compute(), ref.referring(probs, target))


def test_ap_is_torchmetrics_binned_ap_over_all_pixels():
    metric = ReferringSegMetrics()
    probs, target = ref.run(metric, [(p, t.float()) for p, t in _random_batches(2)])
    expected = binary_average_precision(
        torch.from_numpy(probs), torch.from_numpy(target).long(), thresholds=101
    )
    assert torch.equal(metric.compute()["ap"], expected)


def test_ap_on_a_batch_above_torchmetrics_vectorisation_limit():
    # > 50k pixels: torchmetrics bins them with its per-threshold loop instead of one bincount
    probs, target = _random_batches(4, batch_sizes=(4,), size=120)[0]
    expected = ref.binned_ap(probs.numpy(), target.numpy())
    assert _result(probs, target)["ap"].item() == pytest.approx(expected, abs=1e-6)


def test_hand_made_sample():
    # 2 x 3 image: the target is the left 2 x 2 block
    probs = torch.tensor([[[0.9, 0.6, 0.1], [0.9, 0.4, 0.2]]])
    result = _result(probs, torch.tensor([[[1, 1, 0], [1, 1, 0]]]))
    # t = 0.3: the prediction is the target, background included
    assert result["miou_0.3"] == result["fgiou_0.3"] == result["biniou_0.3"] == 1
    # t = 0.5: 3 of the 4 target pixels -> fg IoU 3/4, bg IoU 2/3
    assert result["miou_0.5"].item() == pytest.approx(0.75)
    assert result["fgiou_0.5"].item() == pytest.approx(0.75)
    assert result["biniou_0.5"].item() == pytest.approx((0.75 + 2 / 3) / 2)


def test_threshold_is_strict():
    assert _result(torch.full((1, 2, 2), 0.5), torch.ones(1, 2, 2), thresholds=(0.5,))["fgiou_0.5"] == 0


def test_edge_cases():
    empty, full = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    # empty target, empty prediction: nothing to find, nothing found
    result = _result(empty, empty)
    assert result["miou_0.3"] == result["fgiou_0.3"] == result["biniou_0.5"] == 1
    result = _result(full, empty)
    assert result["miou_0.3"] == result["fgiou_0.3"] == result["biniou_0.3"] == 0
    # all foreground, found: the background IoU has an empty union too
    assert all(v == 1 for v in _result(full, full).values())
    result = _result(empty, full)
    assert result["miou_0.3"] == result["fgiou_0.3"] == 0


def test_mean_iou_is_over_samples_and_fgiou_over_pixels():
    # sample 1: big object found (IoU 1); sample 2: tiny object missed (IoU 0)
    probs, target = torch.zeros(2, 10, 10), torch.zeros(2, 10, 10)
    probs[0], target[0] = 1, 1
    target[1, 0, 0] = 1
    result = _result(probs, target, thresholds=(0.5,))
    assert result["miou_0.5"].item() == pytest.approx(0.5)
    assert result["fgiou_0.5"].item() == pytest.approx(100 / 101)


def test_threshold_keys_are_short():
    result = _result(torch.rand(1, 4, 4), torch.ones(1, 4, 4), thresholds=(float(np.float32(0.3)), 0.25, 1))
    assert list(result) == [
        *("miou_0.3", "fgiou_0.3", "biniou_0.3"),
        *("miou_0.25", "fgiou_0.25", "biniou_0.25"),
        *("miou_1", "fgiou_1", "biniou_1"),
        "ap",
    ]
