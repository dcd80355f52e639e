"""Every DataModule end to end: raw fixture in the real format → prepare → stream → batch, checked pixel for pixel.

Evaluation batches are at model size, so the expected targets are the fixture's ground truth resized the
same way (nearest for masks and labels, linear for alpha mattes).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from fixture_data.raw_formats import write_pascal5i, write_pascal_zeroshot, write_phrasecut, write_refmatte

from clipseg.core.config import PreprocessConfig
from clipseg.data import datamodules as dm
from clipseg.data.device_finish import Ragged, finish_batch
from clipseg.data.prepare import prepare
from clipseg.data.schema import BATCH_KEYS
from clipseg.data.streaming import ShardStream

S = 32
COMMON = {"image_size": S, "batch_size": 4, "num_workers": 0, "seed": 0}


def resized(target: np.ndarray, interpolation=cv2.INTER_NEAREST) -> np.ndarray:
    return cv2.resize(target, (S, S), interpolation=interpolation)


def batches(loader) -> list[dict]:
    """The loader's batches as the step sees them (training crops finished as on the device)."""
    out = [finish_batch(batch, PreprocessConfig(size=S)) for batch in loader]
    for batch in out:
        assert set(BATCH_KEYS) <= set(batch)
        n = len(batch["sample_id"])
        assert batch["image"].shape == (n, 3, S, S) and batch["mask"].shape == (n, 1, S, S)
        assert batch["support"].shape == (n, 3, S, S) and batch["support_valid"].dtype == torch.bool
        assert batch["text_weight"].shape == (n,) and batch["class_id"].dtype == torch.long
    return out


def by_id(loader) -> dict[str, dict]:
    return {
        sid: {k: v[i] for k, v in b.items()} for b in batches(loader) for i, sid in enumerate(b["sample_id"])
    }


def test_shapes_datamodule_batches():
    module = dm.ShapesDataModule(scene_size=40, val_length=6, **COMMON)
    train = next(iter(module.train_dataloader()))
    assert len(train["text"]) == 4 and batches([train])
    val = by_id(module.val_dataloader())
    assert len(val) == 6 and all(s["text"].startswith("a photo of a ") for s in val.values())


def test_crop_scale_reaches_the_training_transform():
    module = dm.ShapesDataModule(scene_size=40, crop_scale=(1.0, 1.0), **COMMON)
    crop = module.transform(train=True)._pipelines[True].transforms[0]
    assert crop.scale == (1.0, 1.0)


def test_a_resumed_shapes_module_draws_a_train_stream_the_interrupted_run_never_saw():
    def first_texts(module: dm.ShapesDataModule) -> list[str]:
        return [t for b in itertools.islice(iter(module.train_dataloader()), 3) for t in b["text"]]

    fresh = first_texts(dm.ShapesDataModule(scene_size=40, **COMMON))
    assert first_texts(dm.ShapesDataModule(scene_size=40, **COMMON)) == fresh  # reproducible
    resumed = dm.ShapesDataModule(scene_size=40, **COMMON)
    resumed.load_state_dict({"global_step": 7})
    assert resumed.train_first_epoch == 7
    assert first_texts(resumed) != fresh
    assert dm.ShapesDataModule(scene_size=40, **COMMON).state_dict() == {"global_step": 0}  # no trainer yet


def test_phrasecut_datamodule_masks_match_the_polygons(tmp_path):
    truth = write_phrasecut(tmp_path / "raw-val", split="val")
    write_phrasecut(tmp_path / "raw-train", split="train")
    prepare("phrasecut", tmp_path / "raw-val", tmp_path / "pc", splits=["val"], shard_size=3)
    prepare("phrasecut", tmp_path / "raw-train", tmp_path / "pc", splits=["train"], shard_size=3)
    module = dm.PhraseCutDataModule(data_dir=str(tmp_path / "pc"), plus=True, **COMMON)
    val = by_id(module.val_dataloader())
    assert set(val) == set(truth.masks)
    for task_id, mask in truth.masks.items():
        assert torch.equal(val[task_id]["mask"][0], torch.from_numpy(resized(mask.astype(np.float32))))
        assert val[task_id]["text"] == f"a photo of a {truth.phrases[task_id]}."
        assert (
            not val[task_id]["support_valid"] and val[task_id]["text_weight"] == 1.0
        )  # text-only evaluation
    train = [b for b in batches(module.train_dataloader())]
    assert sum(len(b["sample_id"]) for b in train) == len(truth.masks)
    resumed = dm.PhraseCutDataModule(data_dir=str(tmp_path / "pc"), plus=True, **COMMON)
    resumed.load_state_dict({"global_step": 5})  # a resumed run reshuffles instead of replaying
    order = [sid for b in train for sid in b["sample_id"]]
    resumed_order = [sid for b in batches(resumed.train_dataloader()) for sid in b["sample_id"]]
    assert sorted(resumed_order) == sorted(order) and resumed_order != order
    excluded = dm.PhraseCutDataModule(data_dir=str(tmp_path / "pc"), exclude_classes=["car", "dog"], **COMMON)
    kept = by_id(excluded.val_dataloader())
    assert set(kept) == {
        t for t, phrase in truth.phrases.items() if phrase.lower() not in ("red car", "two dogs")
    }


def test_fewshot_datamodule_episodes_match_the_label_pngs(tmp_path):
    truth = write_pascal5i(tmp_path / "raw")
    prepare(
        "pascal5i",
        tmp_path / "raw",
        tmp_path / "p5i-fold0",
        splits=["test"],
        options={"fold": 0, "n_episodes": 6},
    )
    module = dm.FewShotDataModule(data_dir=str(tmp_path / "p5i-fold{fold}"), fold=0, **COMMON)
    assert module.num_classes == 21 and module.class_names[1] == "aeroplane"
    episodes = by_id(module.test_dataloader())
    queries = {
        s["sample_id"]: s["meta"]["query"]
        for s in ShardStream(source=str(tmp_path / "p5i-fold0"), split="test")
    }
    assert len(episodes) == 6
    for sample in episodes.values():
        class_id = int(sample["class_id"])
        assert 1 <= class_id <= 5 and sample["support_valid"] and sample["text_weight"] == 0.0
        want = resized((truth.labels[queries[sample["sample_id"]]] == class_id).astype(np.float32))
        assert torch.equal(sample["mask"][0], torch.from_numpy(want))


def test_zeroshot_datamodule_labels_and_class_lists(tmp_path):
    truth = write_pascal_zeroshot(tmp_path / "raw")
    prepare("pascal-zeroshot", tmp_path / "raw", tmp_path / "zs", splits=["val"])
    module = dm.ZeroShotDataModule(data_dir=str(tmp_path / "zs"), n_unseen=2, **COMMON)
    assert module.unseen_class_ids == [10, 14] and len(module.seen_class_ids) == 18
    assert module.class_names[0] == "background" and module.class_names[16] == "potted plant"
    images = by_id(module.val_dataloader())
    assert set(images) == set(truth.labels)
    for image_id, label in truth.labels.items():
        assert torch.equal(images[image_id]["label"], torch.from_numpy(resized(label).astype(np.int64)))
    with pytest.raises(ValueError, match="phrasecut_dir"):
        module.train_dataloader()


def test_refmatte_datamodule_alpha_mattes(tmp_path):
    truth = write_refmatte(tmp_path / "raw", split="test")
    prepare(
        "refmatte",
        tmp_path / "raw",
        tmp_path / "rm" / "keyword",
        splits=["test"],
        options={"setting": "keyword"},
    )
    module = dm.RefMatteDataModule(data_dir=str(tmp_path / "rm"), setting="keyword", **COMMON)
    samples = by_id(module.test_dataloader())
    assert set(samples) == set(truth.alphas)
    for name, alpha in truth.alphas.items():
        want = resized(alpha.astype(np.float32) / 255, cv2.INTER_LINEAR)
        assert torch.allclose(samples[name]["mask"][0], torch.from_numpy(want), atol=1e-5)
        assert samples[name]["text"] == f"a photo of a {truth.entries[name]['keyword']}."


def test_training_batches_are_finished_on_the_device_the_trainer_runs_on():
    """GPU fits send crops (finished after the transfer); CPU fits finish in the workers; the flag overrides."""
    module = dm.ShapesDataModule(scene_size=40, **COMMON)
    assert not module.transform(train=True).finish_on_device  # no trainer: the CPU path

    class Trainer:  # what finishes_on_device reads of a Lightning Trainer
        def __init__(self, device: str) -> None:
            self.strategy = type("Strategy", (), {"root_device": torch.device(device)})()

    for device, expected in (("cuda", True), ("cpu", False)):
        module.trainer = Trainer(device)
        assert module.transform(train=True).finish_on_device is expected
        assert not module.transform(train=False).finish_on_device  # evaluation: always per sample
    module.finish_on_device = True
    crops = next(iter(module.train_dataloader()))
    assert isinstance(crops["image"], Ragged)
    finished = module.on_after_batch_transfer(crops, 0)
    assert finished["image"].shape == (4, 3, S, S) and finished["image"].dtype == torch.float32
