"""Distillation from a frozen teacher on the plain scenes of a batch (``model.distill_from``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from training_helpers import short_fit as fit

from clipseg.data.datamodules import ShapesDataModule
from clipseg.data.transforms import collate
from clipseg.training.losses import distillation_loss, plain_distillation
from clipseg.training.module import ClipSegModule
from clipseg.training.pack import module_from_checkpoint, pack_checkpoint
from clipseg.training.steps import forward_step


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[dict, str]:
    """The hyperparameters of a 2-step shapes-tiny run (extra losses dropped) and its packed model file."""
    folder = fit(tmp_path_factory.mktemp("run"))
    path = pack_checkpoint(folder / "last.ckpt", tmp_path_factory.mktemp("zoo"), "teacher")
    hparams = dict(module_from_checkpoint(folder / "last.ckpt").hparams) | {"losses": None}
    return hparams, str(path)


@pytest.fixture(scope="module")
def batch() -> dict:
    """Four plain validation scenes, the middle two flagged varied as a varied world's batch would be."""
    scenes = ShapesDataModule(image_size=32, num_workers=0, val_length=4, visual_prob=0.5).dataset("val")
    return collate(list(scenes)) | {"varied": torch.tensor([False, True, True, False])}


def test_distillation_is_the_binary_kl_from_the_teachers_probabilities():
    torch.manual_seed(0)
    teacher, student = torch.randn(2, 5, 5) * 3, torch.randn(2, 5, 5) * 3
    p, q = torch.sigmoid(teacher), torch.sigmoid(student)
    kl = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    torch.testing.assert_close(distillation_loss(student, teacher), kl.mean())
    assert distillation_loss(teacher, teacher).abs() < 1e-6


def test_only_plain_scenes_count_against_the_teachers_own_outputs(trained, batch):
    hparams, path = trained
    copy = ClipSegModule(**hparams | {"init_from": path, "distill_from": path}).eval()
    fresh = ClipSegModule(**hparams | {"init_from": None, "distill_from": path}).eval()
    teacher, tokenizer = copy.teacher[0], copy.tokenizer
    with torch.no_grad():
        same = forward_step(copy.model, tokenizer, batch).logits
        logits = forward_step(fresh.model, tokenizer, batch).logits
        wanted = forward_step(teacher, tokenizer, batch).logits
        assert plain_distillation(teacher, tokenizer, batch, same).abs() < 1e-6  # student == teacher
        got = plain_distillation(teacher, tokenizer, batch, logits)
        plain = [0, 3]
        torch.testing.assert_close(got, distillation_loss(logits[plain], wanted[plain]))
        assert got > 0 and not torch.isclose(got, distillation_loss(logits, wanted))
        # A batch without the flag (not a varied world) counts every sample.
        unflagged = {k: v for k, v in batch.items() if k != "varied"}
        everyone = plain_distillation(teacher, tokenizer, unflagged, logits)
        torch.testing.assert_close(everyone, distillation_loss(logits, wanted))
        all_varied = batch | {"varied": torch.ones(4, dtype=torch.bool)}
        assert plain_distillation(teacher, tokenizer, all_varied, logits) is None


def test_the_teacher_is_frozen_and_outside_the_optimizer_and_checkpoints(trained, batch):
    hparams, path = trained
    student = ClipSegModule(**hparams | {"init_from": None, "distill_from": path, "distill_weight": 2.0})
    alone = ClipSegModule(**hparams | {"init_from": None})
    alone.model.load_state_dict(student.model.state_dict())
    student.eval(), alone.eval()
    assert student.state_dict().keys() == alone.state_dict().keys()
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in alone.parameters())
    teacher = student.teacher[0]
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    with torch.no_grad():
        logits = forward_step(student.model, student.tokenizer, batch).logits
        distill = plain_distillation(teacher, student.tokenizer, batch, logits)
        torch.testing.assert_close(student.model_step(batch)[0], alone.model_step(batch)[0] + 2.0 * distill)
        torch.testing.assert_close(student.model_step(batch, auxiliary=False)[0], alone.model_step(batch)[0])


def test_a_varied_world_flags_each_scenes_look_and_a_plain_world_adds_nothing():
    def first(module: ShapesDataModule, n: int = 16) -> list[dict]:
        return list(itertools.islice(module.dataset("train"), n))

    common = {"image_size": 32, "num_workers": 0}
    plain = first(ShapesDataModule(**common))
    assert all("varied" not in item for item in plain)  # default streams: the same keys as before
    assert all(bool(item["varied"]) for item in first(ShapesDataModule(**common, varied_prob=1.0)))
    never = first(ShapesDataModule(**common, varied_prob=1e-9))  # a style that is (almost) never drawn
    assert not any(bool(item["varied"]) for item in never)
    mixed = collate(first(ShapesDataModule(**common, varied_prob=0.5), 32))
    assert mixed["varied"].dtype == torch.bool and 0 < int(mixed["varied"].sum()) < 32


def test_fit_with_a_teacher_runs_and_packs_without_it(tmp_path, trained):
    _, path = trained
    folder = fit(tmp_path, "--model.distill_from", path, "--data.init_args.varied_prob", "0.5")
    teacher = Path(path)
    moved = teacher.rename(tmp_path / "gone.safetensors")  # packing must not need the teacher
    try:
        packed = pack_checkpoint(folder / "last.ckpt", tmp_path / "zoo", "student")
    finally:
        moved.rename(teacher)
    assert packed.exists()
    checkpoint = torch.load(folder / "last.ckpt", weights_only=True)
    assert not any("teacher" in key for key in checkpoint["state_dict"])
    assert checkpoint["hyper_parameters"]["distill_from"] == path  # a resumed run reloads it by name
