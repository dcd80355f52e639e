"""The fast loader draws what the plain one drew: PhraseCut+ statistics over a fixed seed (issue 21).

The same rows go through the training data module's PhraseCut+ policy and train transform twice: as
the loader is (uint8 crops, resized, prompted and normalized after the transfer by
``device_finish.finish_batch``), and with its per-sample steps (decoding, visual prompts, float
normalization per sample) done on the CPU by the plain references of ``fixture_data.reference_loader``.
Crop sizes, negatives, visual prompts, text weights, masks and weights must be equal, the images
equal to the resizes' rounding, and the statistics those the policy defines.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixture_data.reference_loader import (
    reference_decode_mask_pair,
    reference_preprocess,
    reference_visual_prompt,
)
from fixture_data.shards import jpeg
from scipy import stats

import clipseg.data.streaming
import clipseg.data.transforms
from clipseg.core.config import CLIP_STD
from clipseg.data.datamodules import PhraseCutDataModule
from clipseg.data.sample_io import encode_png, make_row
from clipseg.data.transforms import ForegroundCrop, collate

SIZE, ROWS, BATCH = 48, 200, 16
SCALE = (0.3, 1.0)  # the data module's default crop_scale
NEGATIVE_PROB, TEXT_WEIGHT = 0.2, (0.0, 0.5)  # PhraseCut+ as the paper defines it


def phrasecut_like_rows() -> list[dict]:
    """Noisy JPEG photos of random sizes with a box mask; some rows lack a support, some supports are empty."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(ROWS):
        h, w = rng.integers(40, 90, size=2)
        mask = np.zeros((h, w), np.uint8)
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        mask[y : y + rng.integers(4, h - y), x : x + rng.integers(4, w - x)] = 255
        support_mask = mask if i % 9 else np.zeros_like(mask)  # an empty support: no visual prompt
        rows.append(
            make_row(
                f"row-{i}",
                jpeg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)),
                encode_png(mask),
                text=f"thing {i % 23}",
                support_image=jpeg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) if i % 5 else None,
                support_mask=encode_png(support_mask) if i % 5 else None,
                meta={"image_id": i},
            )
        )
    return rows


def run_training_loader(rows: list[dict], monkeypatch: pytest.MonkeyPatch, *, plain: bool) -> dict:
    """Samples, normalized batches and the crop of each sample, from the data module's PhraseCut+ train stream.

    ``plain``: the pixel work per sample in the transform (as evaluation loaders do) instead of uint8
    crops finished by the data module's ``on_after_batch_transfer``.
    """
    module = PhraseCutDataModule(data_dir="unused", plus=True, image_size=SIZE, batch_size=BATCH)
    _, _, policy = module.stream_spec("train")
    transform = module.transform(train=True)
    transform.finish_on_device = not plain
    crops = []
    choose = ForegroundCrop.get_params_dependent_on_data

    def recording(self, params, data):
        chosen = choose(self, params, data)
        x0, y0, x1, y1 = chosen["crop_coords"]
        h, w = params["shape"][:2]
        kept = data["mask"][y0:y1, x0:x1].sum() / max(data["mask"].sum(), 1e-9)
        crops.append(((x1 - x0) * (y1 - y0) / (h * w), kept, (h, w)))
        return chosen

    monkeypatch.setattr(ForegroundCrop, "get_params_dependent_on_data", recording)
    samples = list(policy(rows, epoch=0))
    items = [transform(sample) for sample in samples]
    batches = [collate(items[i : i + BATCH]) for i in range(0, len(items), BATCH)]
    batches = [module.on_after_batch_transfer(batch, 0) for batch in batches]
    monkeypatch.undo()
    return {"samples": samples, "batches": batches, "crops": crops}


@pytest.fixture(scope="module")
def runs() -> dict:
    rows = phrasecut_like_rows()
    with pytest.MonkeyPatch.context() as patch:
        fast = run_training_loader(rows, patch, plain=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clipseg.data.transforms, "visual_prompt", reference_visual_prompt)
        patch.setattr(clipseg.data.streaming, "decode_mask_pair", reference_decode_mask_pair)
        patch.setattr(clipseg.data.transforms, "preprocess", reference_preprocess)
        plain = run_training_loader(rows, patch, plain=True)
    return {"rows": rows, "fast": fast, "plain": plain}


def statistics(run: dict) -> dict:
    samples = run["samples"]
    return {
        "crop_area": [round(area, 6) for area, _, _ in run["crops"]],
        "negative": ["negative_of" in s["meta"] for s in samples],
        "visual": [s["support"] is not None for s in samples],
        "text_weight": [s["text_weight"] for s in samples],
    }


def test_statistics_and_tensors_equal_the_plain_loader(runs):
    assert statistics(runs["fast"]) == statistics(runs["plain"])
    levels = torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255  # normalized units -> pixel levels
    for fast, plain in zip(runs["fast"]["batches"], runs["plain"]["batches"], strict=True):
        assert fast["image"].dtype == plain["image"].dtype == torch.float32
        assert fast["text"] == plain["text"] and fast["sample_id"] == plain["sample_id"]
        for key in ("mask", "support_valid", "text_weight"):
            assert torch.equal(fast[key], plain[key]), key
        for key in ("image", "support"):  # resized by torch (as PIL's filters) vs by PIL
            diff = ((fast[key] - plain[key]).abs() * levels).round()
            assert diff.max() <= 2 and (diff > 0).float().mean() < 0.05, (key, diff.max())


def test_negatives_and_visual_prompts_follow_the_policy(runs):
    rows = {r["sample_id"]: r for r in runs["rows"]}
    samples = runs["fast"]["samples"]
    negative = np.array(statistics(runs["fast"])["negative"])
    bound = 4 * np.sqrt(NEGATIVE_PROB * (1 - NEGATIVE_PROB) / len(samples))
    assert abs(negative.mean() - NEGATIVE_PROB) < bound
    for s, is_negative in zip(samples, negative):
        row = rows[s["sample_id"]]
        own_support = row["support_image"] is not None and int(s["sample_id"].split("-")[1]) % 9 != 0
        # every sample with a usable support gets its visual prompt: a negative's is the other image's
        assert (s["support"] is not None) == bool(is_negative or own_support), s["sample_id"]
        # the support pair: the other image (or the row's own support) with its object's mask
        assert (s["support"] is None) or s["support"].shape[:2] == s["support_mask"].shape
    for batch in runs["fast"]["batches"]:
        assert torch.equal(batch["support_valid"], batch["support"].flatten(1).abs().sum(1) > 0)


def test_text_weights_are_uniform_where_a_visual_prompt_mixes_in(runs):
    weights = np.array(statistics(runs["fast"])["text_weight"])
    visual = np.array(statistics(runs["fast"])["visual"])
    assert (weights[~visual] == 1.0).all()
    low, high = TEXT_WEIGHT
    assert stats.kstest(weights[visual], stats.uniform(low, high - low).cdf).pvalue > 1e-3


def test_crop_sizes_follow_the_crop_definition(runs):
    crops = runs["fast"]["crops"]
    negative = statistics(runs["fast"])["negative"]
    assert all(kept >= 0.05 for (_, kept, _), neg in zip(crops, negative) if not neg)
    # Without foreground the first box is taken: area ~ U(scale), log-uniform aspect, clipped to the image.
    rng = np.random.default_rng(1)
    drawn, expected = [], []
    for (area, _, (h, w)), neg in zip(crops, negative):
        if neg:
            drawn.append(area)
            for _ in range(50):
                a = h * w * rng.uniform(*SCALE)
                aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
                cw, ch = (
                    min(w, max(1, round(np.sqrt(a * aspect)))),
                    min(h, max(1, round(np.sqrt(a / aspect)))),
                )
                expected.append(cw * ch / (h * w))
    assert len(drawn) >= 20
    assert stats.ks_2samp(drawn, expected).pvalue > 1e-3
