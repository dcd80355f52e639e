"""The colour guided filter of ``clipseg.inference.refine`` (numpy only, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from clipseg.inference.refine import GuidedFilter, box_mean, guided_filter, refine


def _brute_box_mean(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape[-2:]
    out = np.empty(x.shape)
    for i in range(h):
        for j in range(w):
            out[..., i, j] = x[..., max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].mean(axis=(-2, -1))
    return out


def _reference(image: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s algorithm written out with a 3 x 3 matrix inverse per pixel (float64)."""
    guide = image.astype(np.float64) / 255.0

    def mean(x: np.ndarray) -> np.ndarray:  # box mean over H x W of an H x W x ... array
        return np.moveaxis(_brute_box_mean(np.moveaxis(x, (0, 1), (-2, -1)), r), (-2, -1), (0, 1))

    mean_i, mean_p = mean(guide), mean(p)
    sigma = mean(guide[..., :, None] * guide[..., None, :]) - mean_i[..., :, None] * mean_i[..., None, :]
    cov_ip = mean(guide * p[..., None]) - mean_i * mean_p[..., None]
    a = np.einsum("hwij,hwj->hwi", np.linalg.inv(sigma + eps * np.eye(3)), cov_ip)
    b = mean_p - (a * mean_i).sum(-1)
    return np.clip((mean(a) * guide).sum(-1) + mean(b), 0, 1)


def _step_scene(size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red square on grey, its exact mask, and a blurry, shifted mask as a coarse model would give."""
    image = np.full((size, size, 3), 120, np.uint8)
    image[20:44, 16:40] = (220, 30, 30)
    mask = np.zeros((size, size), np.float32)
    mask[20:44, 16:40] = 1
    coarse = box_mean(np.roll(mask, 3, axis=1), 6).astype(np.float32)
    return image, mask, coarse


def test_box_mean_is_the_clipped_window_mean():
    x = np.random.default_rng(0).random((2, 9, 11))
    np.testing.assert_allclose(box_mean(x, 3), _brute_box_mean(x, 3), atol=1e-6)


def test_guided_filter_matches_he_et_al_written_out():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (17, 19, 3), dtype=np.uint8)
    probs = rng.random((1, 17, 19)).astype(np.float32)
    out = guided_filter(image, probs, radius=3, eps=1e-2)
    np.testing.assert_allclose(out[0], _reference(image, probs[0].astype(np.float64), 3, 1e-2), atol=1e-5)


def test_output_shape_dtype_and_range():
    image, _, coarse = _step_scene()
    probs = np.stack([coarse, 1 - coarse, np.zeros_like(coarse)])
    out = refine(image, probs, "guided", model_side=16)
    assert out.shape == probs.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_vectorised_over_prompts_equals_one_prompt_at_a_time():
    image, _, coarse = _step_scene()
    probs = np.stack([coarse, np.roll(coarse, 5, axis=0), 1 - coarse])
    together = guided_filter(image, probs, radius=6)
    for k in range(len(probs)):
        np.testing.assert_array_equal(together[k], guided_filter(image, probs[k : k + 1], radius=6)[0])


def test_guided_snaps_a_blurry_shifted_mask_to_the_colour_edge():
    image, mask, coarse = _step_scene()
    target = mask > 0.5

    def iou(p: np.ndarray) -> float:
        return float((p & target).sum() / (p | target).sum())

    refined = refine(image, coarse[None], "guided", model_side=16)[0]
    assert iou(refined > 0.5) > iou(coarse > 0.5) + 0.1


def test_none_returns_the_input_and_unknown_modes_are_refused():
    image, _, coarse = _step_scene()
    np.testing.assert_array_equal(refine(image, coarse[None], "none", model_side=16), coarse[None])
    with pytest.raises(ValueError, match="unknown refine mode 'sam'"):
        refine(image, coarse[None], "sam", model_side=16)


def test_radius_scales_with_the_upsampling_factor():
    assert GuidedFilter().radius_for(512, 96) == 21
    assert GuidedFilter().radius_for(1024, 96) == 43
    assert GuidedFilter().radius_for(90, 96) == 4
    assert GuidedFilter(radius=7).radius_for(1024, 96) == 7


def test_large_images_are_filtered_at_max_side_close_to_full_resolution():
    image, _, coarse = _step_scene(128)
    full = guided_filter(image, coarse[None], radius=8)
    fast = guided_filter(image, coarse[None], radius=8, max_side=64)
    assert fast.shape == full.shape
    assert np.abs(fast - full).mean() < 0.02


def test_mismatched_shapes_are_refused():
    image, _, coarse = _step_scene()
    with pytest.raises(ValueError, match="N x H x W"):
        guided_filter(image, coarse[None, :32], radius=4)


def test_the_documented_defaults_radius_4_model_pixels_and_eps_1e_3():
    """``refine(..., "guided")`` with no settings: radius 4 x (image side / model side), eps 1e-3 (module doc)."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    probs = rng.random((1, 24, 20)).astype(np.float32)
    want = _reference(image, probs[0].astype(np.float64), r=4 * 24 // 12, eps=1e-3)  # 24 / 12: upsampling x2
    np.testing.assert_allclose(refine(image, probs, "guided", model_side=12)[0], want, atol=1e-5)
    np.testing.assert_allclose(guided_filter(image, probs, radius=8)[0], want, atol=1e-5)  # eps's default
