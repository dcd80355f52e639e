"""Image-matting errors: the RefMatte protocol (SAD, MSE, MAD, Grad, Conn of the Deep Image Matting benchmark)."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor
from torchmetrics import Metric

from clipseg.metrics._common import fixed_point_mean, to_fixed_point
from clipseg.metrics._validation import Checks, expect_ndim, expect_same_shape

GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
_CONNECTIVITY_MIN_DISTANCE = 0.15  # φ ignores alpha above the connection level by less than this


def _gaussian_and_derivative(sigma: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """1-D factors of the DIM evaluation's 2-D Gaussian-derivative filter ``g(y) * g'(x)``.

    Same support (cut where the Gaussian density falls to 0.01: 9 taps for σ = 1.4) and normalisation (the 2-D
    filter has unit L2 norm, so each factor has) as ``gaussgradient`` in the DIM evaluation code.
    """
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2)))
    x = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
    gaussian = torch.exp(-(x**2) / (2 * sigma**2))
    derivative = -x * gaussian
    return gaussian / gaussian.norm(), derivative / derivative.norm()


def gradient_magnitude(alpha: Tensor) -> Tensor:
    """Gradient magnitude by Gaussian-derivative filters (σ = 1.4), image borders replicated.

    Args:
        alpha: B x H x W float64 alpha mattes.

    Returns:
        B x H x W float64 magnitudes.
    """
    gaussian, derivative = _gaussian_and_derivative(GRADIENT_SIGMA, alpha.device)
    half = gaussian.numel() // 2
    padded = F.pad(alpha[:, None], (half, half, half, half), mode="replicate")
    along_rows, along_cols = (-1, 1), (1, -1)
    grad_x = F.conv2d(F.conv2d(padded, gaussian.view(1, 1, *along_rows)), derivative.view(1, 1, *along_cols))
    grad_y = F.conv2d(F.conv2d(padded, gaussian.view(1, 1, *along_cols)), derivative.view(1, 1, *along_rows))
    return torch.hypot(grad_x, grad_y)[:, 0]


def connectivity_error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pixel connectivity error ``|φ(pred) - φ(gt)|`` (Rhemann et al. 2009, as in the DIM evaluation code).

    For each level ``0.1, 0.2, ..., 1`` the source region is the largest 4-connected component of the pixels
    where both mattes reach the level; a pixel's connection level is the last level before it falls out of the
    source region (1 if it never does). ``φ(a) = 1 - d * (d >= 0.15)`` with ``d = a - level``.

    Args:
        pred: H x W predicted alpha in [0, 1].
        gt: H x W true alpha in [0, 1].

    Returns:
        H x W float64 error map.
    """
    levels = np.linspace(0, 1, round(1 / CONNECTIVITY_STEP) + 1)
    connected_until = np.full(pred.shape, -1.0)
    for previous, level in pairwise(levels):
        components, _ = ndimage.label((pred >= level) & (gt >= level))
        # label of the largest component; with no component, label 1 marks no pixel and the source is empty
        largest = np.argmax(np.bincount(components.ravel(), minlength=2)[1:]) + 1
        connected_until[(connected_until == -1) & (components != largest)] = previous
    connected_until[connected_until == -1] = 1.0

    def phi(alpha: np.ndarray) -> np.ndarray:
        excess = alpha - connected_until
        return 1 - excess * (excess >= _CONNECTIVITY_MIN_DISTANCE)

    return np.abs(phi(pred) - phi(gt))


def image_errors(pred: Tensor, gt: Tensor, region: Tensor) -> Tensor:
    """Errors of each image over its region, see :class:`MattingErrors`.

    Args:
        pred: B x H x W float64 predicted alpha in [0, 1].
        gt: B x H x W float64 true alpha in [0, 1].
        region: B x H x W float64 0/1 region to evaluate.

    Returns:
        B x 5 float64: SAD, MSE, MAD, Grad, Conn.
    """

    def region_sum(values: Tensor) -> Tensor:
        return (values * region).sum((1, 2))

    pixels = region.sum((1, 2))

    def region_mean(values: Tensor) -> Tensor:
        return torch.where(pixels > 0, region_sum(values) / pixels.clamp(min=1), 0.0)

    error = pred - gt
    grad = (gradient_magnitude(pred) - gradient_magnitude(gt)).square()
    pred_np, gt_np = pred.cpu().numpy(), gt.cpu().numpy()  # connected components: scipy, per image
    conn_np = np.array([connectivity_error_map(p, g) for p, g in zip(pred_np, gt_np)]).reshape(pred_np.shape)
    conn = torch.from_numpy(conn_np).to(pred.device)
    return torch.stack(
        [
            region_sum(error.abs()) / 1000,
            region_mean(error.square()),
            region_mean(error.abs()),
            region_sum(grad) / 1000,
            region_sum(conn) / 1000,
        ],
        dim=1,
    )


class MattingErrors(Metric):
    """RefMatte protocol (Li et al. 2023), with the error definitions of the Deep Image Matting benchmark
    (Xu et al. 2017; Rhemann et al. 2009).

    Errors of each image, averaged over images by ``compute()``:

    - ``sad``: Σ|p - g| / 1000;
    - ``mse``: mean (p - g)²;
    - ``mad``: mean |p - g|;
    - ``grad``: Σ(|∇p| - |∇g|)² / 1000, gradients by Gaussian-derivative filters with σ = 1.4;
    - ``conn``: Σ|φ(p) - φ(g)| / 1000, connectivity error with level step 0.1.

    Sums and means run over the whole image or, given ``mask``, over its region (e.g. a trimap's unknown band);
    gradients and connectivity are always computed on the whole image first. An image whose region is empty
    has MSE and MAD 0. Alpha values are in [0, 1], as in the Python ports of the DIM evaluation code
    (``alpha / 255``); where no component reaches a connectivity level, the pixels still unassigned get the
    previous level, as in the DIM (MATLAB) code.

    Device: SAD, MSE, MAD and Grad run batched on the inputs' device. Conn needs connected components and runs
    per image with scipy on the CPU: each ``update`` copies the batch to the host.

    State: 5 fixed-point error sums and an image count; it does not grow with the number of images.

    Args:
        from_logits: ``pred_alpha`` holds logits, squashed with a sigmoid.
        validate_args: check input values (NaN, range, binary mask); costs one device-to-host sync per
            ``update``. Shapes and dtypes are always checked.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    keys = ("sad", "mse", "mad", "grad", "conn")

    def __init__(self, from_logits: bool = False, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.from_logits = from_logits
        self.validate_args = validate_args
        self.add_state("error_sums", torch.zeros(len(self.keys), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred_alpha: Tensor, gt_alpha: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            pred_alpha: B x H x W predicted alpha in [0, 1] (logits if ``from_logits``).
            gt_alpha: B x H x W true alpha in [0, 1].
            mask: optional B x H x W binary region to evaluate (bool, integer or float 0/1).
        """
        expect_ndim("pred_alpha", pred_alpha, "B x H x W")
        expect_same_shape("gt_alpha", gt_alpha, "pred_alpha", pred_alpha.shape)
        checks = Checks(self.validate_args)
        pred = checks.probabilities("pred_alpha", pred_alpha, from_logits=self.from_logits).double()
        checks.unit_interval("gt_alpha", gt_alpha)
        if mask is not None:
            expect_same_shape("mask", mask, "pred_alpha", pred_alpha.shape)
            checks.binary("mask", mask)
        checks.raise_first_failure()
        region = torch.ones_like(pred) if mask is None else mask.double()
        errors = image_errors(pred, gt_alpha.double(), region)
        self.error_sums += to_fixed_point(errors).sum(0)
        self.num_images += errors.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """Return ``sad``, ``mse``, ``mad``, ``grad`` and ``conn``, each the mean over images."""
        means = fixed_point_mean(self.error_sums, self.num_images)
        return {key: mean.float() for key, mean in zip(self.keys, means)}
