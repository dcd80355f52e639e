"""The device finish gives the CPU path's pixels: PIL's resizes to a level, OpenCV's blur, the same mixing.

Training batches are resized, prompted and normalized on the device (``data.device_finish``); evaluation
and inference do the same on the CPU (``core.preprocess``, ``core.prompts.visual_prompt``). A model must
see the same images in both, so each step is compared with its CPU counterpart.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from clipseg.core.config import PreprocessConfig
from clipseg.core.prompts import VisualPromptStyle, visual_prompt
from clipseg.data.batch_resize import resize_batch
from clipseg.data.device_finish import Ragged, compose_prompts, finish_batch, gaussian_blur
from clipseg.data.transforms import SampleTransform, collate

PIL_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth regions with hard edges and clipped highlights, like a photo (bicubic overshoots at its edges)."""
    noise = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    return np.clip((noise.astype(np.int32) - 128) * 4 + 128, 0, 255).astype(np.uint8)


SIZES = [(375, 500), (120, 90), (200, 420), (61, 80), (352, 352), (352, 500), (30, 30)]


@pytest.mark.parametrize("resample", sorted(PIL_FILTERS))
@pytest.mark.parametrize("kind", ["photo", "noise"])
def test_batched_resize_matches_pil_to_a_level(resample, kind):
    """One batch of mixed sizes (up, down, one side only, none), each image against PIL's own resize."""
    rng = np.random.default_rng([len(resample), len(kind)])
    draw = photo if kind == "photo" else lambda r, h, w: r.integers(0, 256, (h, w, 3), dtype=np.uint8)
    images = [draw(rng, h, w) for h, w in SIZES]
    for size in (352, 40):
        batch = resize_batch([torch.from_numpy(image) for image in images], size, resample)
        assert batch.shape == (len(SIZES), 3, size, size)
        for image, got in zip(images, batch.permute(0, 2, 3, 1).numpy()):
            want = np.asarray(Image.fromarray(image).resize((size, size), PIL_FILTERS[resample]))
            assert np.array_equal(got, np.round(got)) and got.min() >= 0 and got.max() <= 255
            diff = np.abs(got.astype(int) - want)
            assert diff.max() <= 2 and (diff > 0).mean() < 0.03, (image.shape, diff.max(), (diff > 0).mean())


def test_batched_resize_in_small_canvases_equals_one_canvas():
    rng = np.random.default_rng(7)
    images = [torch.from_numpy(photo(rng, h, w)) for h, w in SIZES]
    whole = resize_batch(images, 64, "bicubic")
    pieces = resize_batch(images, 64, "bicubic", canvas_elements=400 * 400 * 3)  # about one image each
    assert torch.equal(pieces, whole)


def test_batched_resize_takes_masks_keeps_the_right_size_and_refuses_other_filters():
    mask = (np.random.default_rng(0).random((30, 50)) > 0.5).astype(np.uint8) * 255
    want = np.asarray(Image.fromarray(mask).resize((20, 20), Image.Resampling.BILINEAR))
    got = resize_batch([torch.from_numpy(mask)], 20, "bilinear")
    assert got.shape == (1, 1, 20, 20) and np.abs(got[0, 0].numpy() - want).max() <= 1
    square = torch.from_numpy(mask[:20, :20])
    assert torch.equal(resize_batch([square], 20, "bicubic")[0, 0], square.float())
    assert torch.equal(resize_batch([square], 20, "lanczos")[0, 0], square.float())  # nothing to resize
    with pytest.raises(ValueError, match="lanczos"):
        resize_batch([square, torch.from_numpy(mask)], 20, "lanczos")


@pytest.mark.parametrize("side", [5, 30, 64])  # 5: the 25-tap kernel reflects more than once
def test_gaussian_blur_is_opencvs(side):
    image = np.random.default_rng(side).uniform(0, 255, (side, side + 3, 3)).astype(np.float32)
    want = cv2.GaussianBlur(image, ksize=(0, 0), sigmaX=3.0, borderType=cv2.BORDER_REFLECT)
    got = gaussian_blur(torch.from_numpy(image).permute(2, 0, 1)[None], 3.0)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)


STYLES = [
    VisualPromptStyle(crop_context=None),
    VisualPromptStyle(crop_context=None, highlight=True),
    VisualPromptStyle(crop_context=None, blur_sigma=0.0, background_factor=0.5),
    VisualPromptStyle(crop_context=None, background_factor=1.8),
]


@pytest.mark.parametrize("style", STYLES, ids=lambda s: repr(s)[18:-1])
def test_compose_is_visual_prompts_last_step(style):
    """At the prompt size (no resize, no crop) ``visual_prompt`` is its mixing alone: pixels must be equal."""
    rng = np.random.default_rng(STYLES.index(style))
    size, images, masks, want = 40, [], [], []
    for kind in ("binary", "soft", "empty"):
        image = photo(rng, size, size)
        yy, xx = np.mgrid[:size, :size]
        distance = np.sqrt((yy - rng.uniform(5, 35)) ** 2 + (xx - rng.uniform(5, 35)) ** 2)
        mask = {"binary": distance < 12, "soft": np.clip(1.5 - distance / 10, 0, 1), "empty": distance < 0}[
            kind
        ]
        mask = mask.astype(np.float32)
        want.append(visual_prompt(image, mask, size, style))
        images.append(torch.from_numpy(image).permute(2, 0, 1).float())
        masks.append(torch.from_numpy((mask * 255).astype(np.uint8)).float()[None])
    got = compose_prompts(torch.stack(images), torch.stack(masks), style)
    assert np.array_equal(got.permute(0, 2, 3, 1).numpy().astype(np.uint8), np.stack(want))


def test_ragged_round_trip_from_views():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    arrays = [big[3:20, 5:31], np.zeros((0, 0, 3), np.uint8), big[::-1, ::2], big[:1, :1]]
    packed = Ragged.pack(arrays)
    assert packed.flat.numel() == sum(a.size for a in arrays)
    for got, want in zip(packed.unpack(), arrays, strict=True):
        assert np.array_equal(got.numpy(), want)
    with pytest.raises(TypeError, match="uint8"):
        Ragged.pack([np.zeros((2, 2), np.float32)])


@pytest.mark.parametrize("resample", ["bilinear", "lanczos"])  # lanczos: images resized in the worker
def test_finished_training_batch_is_the_evaluation_batch_to_a_level(resample):
    """Photos with a prompt pair, a finished prompt and none: the batch the step sees, both ways."""
    rng = np.random.default_rng(1)
    config = PreprocessConfig(size=64, resample=resample)
    samples = []
    for i, support in enumerate(("pair", "prompt", None, "pair")):
        h, w = 90 + 7 * i, 120 - 5 * i
        mask = np.zeros((h, w), np.float32)
        mask[20:60, 30 + i : 80] = 1.0
        samples.append(
            {
                "sample_id": f"s{i}",
                "image": photo(rng, h, w),
                "mask": mask,
                "text": "cup",
                "support": {"pair": photo(rng, h, w), "prompt": photo(rng, 48, 48), None: None}[support],
                "support_mask": mask if support == "pair" else None,
                "text_weight": 0.3,
            }
        )
    evaluation = collate([SampleTransform(preprocessing=config)(s) for s in samples])
    crops = collate([SampleTransform(preprocessing=config, finish_on_device=True)(s) for s in samples])
    finished = finish_batch(crops, config)
    assert torch.equal(finished["mask"], evaluation["mask"])
    assert torch.equal(finished["support_valid"], evaluation["support_valid"])
    levels = torch.tensor(config.std).view(1, 3, 1, 1) * 255  # normalized units -> pixel levels
    for key in ("image", "support"):
        diff = ((finished[key] - evaluation[key]).abs() * levels).round()
        assert diff.max() <= 2 and (diff > 0).float().mean() < 0.03, (
            key,
            diff.max(),
            (diff > 0).float().mean(),
        )
    assert not finished["support"][2].any()
