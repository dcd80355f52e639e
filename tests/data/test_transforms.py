"""Sample → tensors: foreground-keeping crops, no flip for left/right phrases, normalization, collate."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from clipseg.core.config import CLIP_MEAN, CLIP_STD, PreprocessConfig
from clipseg.core.prompts import TEMPLATES
from clipseg.data.device_finish import Ragged, finish_batch
from clipseg.data.transforms import (
    ForegroundCrop,
    SampleTransform,
    collate,
    mentions_left_right,
)


def sample(text="red circle", *, support=False, size=(48, 64)) -> dict:
    h, w = size
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (255, 0, 0)  # left half red: a flip is visible
    mask = np.zeros((h, w), np.float32)
    mask[4:10, 2:8] = 1.0  # small object in the top-left corner
    return {
        "sample_id": f"s-{text}",
        "image": image,
        "mask": mask,
        "text": text,
        "class_id": 3,
        "support": np.full((20, 20, 3), 128, np.uint8) if support else None,
        "text_weight": 0.25,
    }


def test_foreground_crop_keeps_at_least_five_percent_of_the_object():
    crop = A.Compose([ForegroundCrop(scale=(0.05, 0.2))], seed=0)
    s = sample()
    kept = [crop(image=s["image"], mask=s["mask"])["mask"].sum() / s["mask"].sum() for _ in range(300)]
    assert min(kept) >= 0.05
    assert max(kept) < 1.0 or min(kept) < 1.0  # crops are random, not always the whole object
    empty = np.zeros_like(s["mask"])
    out = crop(image=s["image"], mask=empty)
    assert out["image"].shape[0] < s["image"].shape[0] or out["image"].shape[1] < s["image"].shape[1]


@pytest.mark.parametrize("phrase", ["circle on the left", "the rightmost dog", "Left arm"])
def test_no_horizontal_flip_when_the_phrase_says_left_or_right(phrase):
    assert mentions_left_right(phrase)
    transform = SampleTransform(
        preprocessing=PreprocessConfig(size=32), train=True, crop_scale=(1.0, 1.0), seed=1
    )
    for _ in range(30):
        out = transform(sample(phrase))
        assert out["image"][0, :, 0].mean() > out["image"][0, :, -1].mean()  # red stays on the left


def test_other_phrases_are_flipped_sometimes():
    assert not mentions_left_right("bright red circle")
    transform = SampleTransform(
        preprocessing=PreprocessConfig(size=32), train=True, crop_scale=(1.0, 1.0), seed=1
    )
    flips = [bool(transform(sample())["image"][0, :, 0].mean() < 0) for _ in range(30)]
    assert any(flips) and not all(flips)


def test_eval_resizes_normalizes_and_applies_the_fixed_template():
    s = sample(support=True)
    out = SampleTransform(preprocessing=PreprocessConfig(size=32))(s)
    assert out["image"].shape == (3, 32, 32) and out["mask"].shape == (1, 32, 32)
    red = torch.tensor(
        [(1 - CLIP_MEAN[0]) / CLIP_STD[0], -CLIP_MEAN[1] / CLIP_STD[1], -CLIP_MEAN[2] / CLIP_STD[2]]
    )
    assert torch.allclose(out["image"][:, 0, 0], red, atol=1e-5)
    assert set(out["mask"].unique().tolist()) == {0.0, 1.0}  # nearest resize keeps binary masks binary
    assert out["text"] == "a photo of a red circle."
    assert torch.allclose(
        out["support"][:, 0, 0], (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    )
    assert out["support_valid"] and out["text_weight"] == 0.25 and out["class_id"] == 3


def test_train_samples_templates():
    transform = SampleTransform(preprocessing=PreprocessConfig(size=16), train=True)
    texts = {transform(sample("cat"))["text"] for _ in range(40)}
    assert texts <= {t.format("cat") for t in TEMPLATES} and len(texts) > 3


def test_collate_builds_the_batch_dict():
    transform = SampleTransform(preprocessing=PreprocessConfig(size=16))
    batch = collate([transform(sample(support=True)), transform(sample("", support=False))])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["mask"].shape == (2, 1, 16, 16)
    assert batch["support"].shape == (2, 3, 16, 16) and not batch["support"][1].any()
    assert batch["support_valid"].tolist() == [True, False]
    assert batch["text_weight"].tolist() == [0.25, 1.0]  # w = 1 without a valid support
    assert batch["text"] == ["a photo of a red circle.", ""]
    assert batch["sample_id"] == ["s-red circle", "s-"] and batch["class_id"].dtype == torch.long


def test_label_maps_are_resized_with_nearest_and_batched():
    s = sample()
    s["label"] = np.where(s["mask"] > 0, 7, 255).astype(np.int64)
    out = SampleTransform(preprocessing=PreprocessConfig(size=16))(s)
    assert out["label"].dtype == torch.long and set(out["label"].unique().tolist()) <= {7, 255}
    with pytest.raises(ValueError, match="different keys"):
        collate([out, SampleTransform(preprocessing=PreprocessConfig(size=16))(sample())])
    with pytest.raises(ValueError, match="nearest"):
        SampleTransform(preprocessing=PreprocessConfig(size=16), mask_interpolation="linear")(s)


def test_crops_finished_on_the_device_give_the_float_batch():
    config = PreprocessConfig(size=16)
    samples = [
        sample(support=True, size=(24, 32)),
        sample("left cup", size=(24, 32)),
        sample("cup", size=(24, 32)),
    ]
    samples[2]["support"] = np.full((20, 20, 3), 128, np.uint8)
    samples[2]["support_mask"] = np.pad(np.ones((8, 8), np.float32), 6)  # a support pair: prompted
    floats = collate([SampleTransform(preprocessing=config)(s) for s in samples])
    crops = collate([SampleTransform(preprocessing=config, finish_on_device=True)(s) for s in samples])
    assert isinstance(crops["image"], Ragged) and crops["image"].shapes == ((24, 32, 3),) * 3
    assert crops["support_mask"].shapes == ((0, 0), (0, 0), (10, 10))  # 8 px object, 10 % context
    assert crops["mask"].dtype == torch.uint8  # exact levels: a quarter of the bytes
    finished = finish_batch(crops, config)
    assert "support_mask" not in finished
    for key in ("image", "mask", "support"):  # flat colors halved: no resize rounding to differ by
        assert finished[key].dtype == torch.float32 and torch.equal(finished[key], floats[key]), key
    assert not finished["support"][1].any()  # no support: zeros, as in a float batch
    assert finish_batch(floats, config) is floats


def test_crops_over_four_model_inputs_are_finished_in_the_worker():
    """A big photo would fill shared memory and the device's canvas: the worker resizes and prompts it (PIL)."""
    config = PreprocessConfig(size=16)
    big = sample("cup", size=(48, 64))  # 3072 pixels > 4 x 16²
    big["support"], big["support_mask"] = big["image"], np.pad(np.ones((36, 52), np.float32), 6)
    item = SampleTransform(preprocessing=config, finish_on_device=True)(big)
    assert item["image"].shape == item["support"].shape == (16, 16, 3) and item["support_mask"].size == 0
    finished = finish_batch(collate([item]), config)
    floats = collate([SampleTransform(preprocessing=config)(big)])
    for key in ("image", "support"):  # the same PIL pixels as evaluation's
        assert torch.equal(finished[key], floats[key]), key
