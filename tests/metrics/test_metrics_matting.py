"""MattingErrors (RefMatte / DIM protocol) against the DIM evaluation formulas in numpy."""

from __future__ import annotations

import metrics_reference as ref
import numpy as np
import pytest
import torch

from clipseg.metrics import MattingErrors
from clipseg.metrics.matting import connectivity_error_map, gradient_magnitude


def _soft_mattes(seed: int, batch: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Blurry blobs with noise: mattes with real structure (components, edges), not just noise."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.rand(batch, 2, 1, 1, generator=gen) * size
    radius = 2 + 4 * torch.rand(batch, 1, 1, generator=gen)
    dist = ((yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2).sqrt()
    gt = (radius - dist + 1).clamp(0, 2) / 2
    pred = (gt + 0.3 * torch.randn(batch, size, size, generator=gen)).clamp(0, 1)
    return pred, gt


@pytest.mark.parametrize("seed", [0, 1])
def test_random_mattes_match_reference(seed):
    metric = MattingErrors()
    pred, gt = ref.run(metric, [_soft_mattes(seed * 10 + i) for i in range(2)])
    ref.assert_matches(metric.compute(), ref.matting(pred, gt), rel=1e-5)


def test_mask_restricts_the_region():
    pred, gt = _soft_mattes(5)
    mask = torch.zeros_like(gt, dtype=torch.bool)
    mask[:, 4:12, 2:9] = True
    mask[1] = False  # an image with an empty region: MSE and MAD 0
    metric = MattingErrors()
    pred, gt, mask = ref.run(metric, [(pred, gt, mask)])
    ref.assert_matches(metric.compute(), ref.matting(pred, gt, mask), rel=1e-5)


def test_gradient_matches_dim_filters_also_on_images_smaller_than_the_filter():
    for shape in [(13, 17), (3, 5)]:
        image = np.random.default_rng(0).random(shape)
        ours = gradient_magnitude(torch.from_numpy(image)[None])[0].numpy()
        np.testing.assert_allclose(ours, ref.gradient_magnitude(image), rtol=1e-10, atol=1e-12)


def test_connectivity_matches_dim_code():
    pred, gt = _soft_mattes(7, batch=2)
    for p, g in zip(pred.double().numpy(), gt.double().numpy()):
        np.testing.assert_allclose(connectivity_error_map(p, g), ref.connectivity_map(p, g))


def test_hand_made():
    # gt all foreground, prediction all background, 4 x 5 pixels
    metric = MattingErrors()
    metric.update(torch.zeros(1, 4, 5), torch.ones(1, 4, 5))
    result = {k: v.item() for k, v in metric.compute().items()}
    # flat mattes have no gradient; nothing is connected at any level, so φ(pred) = 1 and φ(gt) = 0
    assert result == pytest.approx({"sad": 0.02, "mse": 1.0, "mad": 1.0, "grad": 0.0, "conn": 0.02})


@pytest.mark.parametrize("value", [0.0, 1.0, 0.37])
def test_perfect_prediction_has_no_error(value):
    metric = MattingErrors()
    _, gt = _soft_mattes(3)
    metric.update(torch.full((1, 6, 6), value), torch.full((1, 6, 6), value))
    metric.update(gt, gt)
    assert all(v == 0 for v in metric.compute().values())
