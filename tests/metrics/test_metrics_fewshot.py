"""FewShotMetrics (PASCAL-5i / COCO-20i protocol) against numpy reference formulas."""

from __future__ import annotations

import metrics_reference as ref
import pytest
import torch

from clipseg.metrics import FewShotMetrics


@pytest.mark.parametrize("seed", [0, 1])
def test_random_episodes_match_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(3):
        probs = torch.rand(5, 10, 10, generator=gen)
        target = (probs + 0.5 * torch.rand(5, 10, 10, generator=gen)) > 0.8
        batches.append((probs, target, torch.randint(0, 4, (5,), generator=gen)))  # classes 4, 5 never occur
    metric = FewShotMetrics(num_classes=6, threshold=0.4)
    probs, target, class_ids = ref.run(metric, batches)
    ref.assert_matches(metric.compute(), ref.fewshot(probs, target, class_ids, threshold=0.4))


def _result(probs: torch.Tensor, target: torch.Tensor, class_ids: list[int]) -> dict[str, torch.Tensor]:
    metric = FewShotMetrics(num_classes=3)
    metric.update(probs, target, torch.tensor(class_ids))
    return metric.compute()


def test_class_iou_is_accumulated_over_its_episodes():
    # class 0: a big hit and a tiny miss -> pooled IoU 100/101; class 1: one miss -> 0
    probs, target = torch.zeros(3, 10, 10), torch.zeros(3, 10, 10)
    probs[0], target[0] = 1, 1
    target[1, 0, 0] = 1
    target[2, :5] = 1
    assert _result(probs, target, [0, 0, 1])["miou"].item() == pytest.approx((100 / 101 + 0) / 2)


def test_edge_cases():
    empty, full = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    result = _result(empty, empty, [1])
    assert result["miou"] == result["fbiou"] == 1
    assert all(v == 1 for v in _result(full, full, [0]).values())
    result = _result(empty, full, [2])
    assert result["miou"] == result["fbiou"] == 0


def test_no_episodes_gives_nan_miou():
    with pytest.warns(UserWarning, match="compute"):
        assert FewShotMetrics(num_classes=2).compute()["miou"].isnan()
