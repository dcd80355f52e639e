"""ClipSegModule pieces: prompt mixing, checkpoints without the frozen backbone, export, precision, wandb."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning import Trainer
from safetensors import safe_open
from training_helpers import CONFIG, SHORT
from training_helpers import short_fit as fit

import clipseg
from clipseg.cli.train import run_cli
from clipseg.cli.zoo import main as zoo_main
from clipseg.core.files import sha256_of
from clipseg.core.prompts import tokenize_prompts
from clipseg.core.tokenizer import read_tokenizer
from clipseg.data.datamodules import ShapesDataModule
from clipseg.data.transforms import collate
from clipseg.eval.quality import QUALITY_SEEDS, shapes_quality_over_seeds
from clipseg.modeling import ClipSeg, ClipSegConfig
from clipseg.training.lightning_cli import auto_precision
from clipseg.training.losses import (
    FromScratchLosses,
    dense_label_loss,
    prompt_contrastive_loss,
    soft_dice_loss,
)
from clipseg.training.module import ClipSegModule
from clipseg.training.pack import (
    META_NAME,
    load_lightning_checkpoint,
    module_from_checkpoint,
    pack_checkpoint,
)
from clipseg.training.steps import batch_conditionals, forward_step
from clipseg.zoo import get_card
from clipseg.zoo.store import repo_zoo_dir


def metadata_of(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="numpy") as handle:
        return handle.metadata()


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_backbone_dir, tiny_tokenizer):
    config = ClipSegConfig(
        backbone=str(tiny_backbone_dir), extract_layers=(1, 2), reduce_dim=8, image_size=32
    )
    return ClipSeg(config).eval(), tiny_tokenizer


def test_conditionals_mix_text_and_visual_per_sample(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    torch.manual_seed(0)
    support = torch.randn(3, 3, 32, 32)
    batch = {
        "image": torch.randn(3, 3, 32, 32),
        "text": ["a photo of a red circle.", "", "a blue triangle"],
        "support": support,
        "support_valid": torch.tensor([False, True, True]),
        "text_weight": torch.tensor([0.2, 0.7, 0.3]),  # the first has no support: w counts as 1
        "sample_id": ["a", "b", "c"],
    }
    with torch.no_grad():
        got = batch_conditionals(model, tokenizer, batch)
        enc = tokenize_prompts(tokenizer, [batch["text"][0], batch["text"][2]], return_tensors="pt")
        text = model.encode_text(**enc)
        visual = model.encode_visual_prompt(support[1:])
    torch.testing.assert_close(got[0], text[0])
    torch.testing.assert_close(got[1], visual[0])  # empty text: visual only whatever w says
    torch.testing.assert_close(got[2], 0.3 * text[1] + 0.7 * visual[1])


def test_a_sample_without_any_prompt_is_named(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    batch = {
        "image": torch.zeros(1, 3, 32, 32),
        "text": [" "],
        "support": torch.zeros(1, 3, 32, 32),
        "support_valid": torch.tensor([False]),
        "text_weight": torch.tensor([1.0]),
        "sample_id": ["img-7"],
    }
    with pytest.raises(ValueError, match="img-7"):
        batch_conditionals(model, tokenizer, batch)


def test_the_papers_step_is_plain_bce_and_extra_losses_add_on_top(tiny_backbone_dir):
    config = ClipSegConfig(
        backbone=str(tiny_backbone_dir), extract_layers=(1, 2), reduce_dim=8, image_size=32
    )
    batch = collate(list(ShapesDataModule(image_size=32, num_workers=0, val_length=4).dataset("val")))
    plain = ClipSegModule(config=config).eval()
    extra = ClipSegModule(config=config, losses=FromScratchLosses(dice_weight=0.5)).eval()
    extra.model.load_state_dict(plain.model.state_dict())
    out = forward_step(plain.model, plain.tokenizer, batch)
    bce = F.binary_cross_entropy_with_logits(out.logits, out.target)
    with torch.no_grad():
        torch.testing.assert_close(plain.model_step(batch)[0], bce)
        torch.testing.assert_close(
            extra.model_step(batch)[0], bce + 0.5 * soft_dice_loss(out.logits, out.target)
        )
        torch.testing.assert_close(extra.model_step(batch, auxiliary=False)[0], bce)


def test_soft_dice_matches_its_formula_and_punishes_marks_on_empty_targets():
    logits = torch.tensor([[[2.0, -1.0], [0.5, -3.0]], [[1.0, 1.0], [-2.0, 0.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    p = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    want = (1 - (2 * (p * y).sum(1) + 1) / (p.sum(1) + y.sum(1) + 1)).mean()
    torch.testing.assert_close(soft_dice_loss(logits, target), want)
    # An empty target: the loss is |p| / (|p| + 1), so it falls as the marks fade.
    empty = torch.zeros(1, 2, 2)
    assert soft_dice_loss(torch.full((1, 2, 2), -1.0), empty) > soft_dice_loss(
        torch.full((1, 2, 2), -6.0), empty
    )
    assert soft_dice_loss(torch.full((1, 2, 2), -20.0), empty) < 1e-6


def test_contrastive_loss_matches_clip_with_equal_phrases_as_shared_positives():
    torch.manual_seed(0)
    text, visual, scale = torch.randn(4, 8), torch.randn(4, 8), torch.tensor(2.0)
    phrases = ["red circle", "red square", "red circle", "blue circle"]
    loss = prompt_contrastive_loss(text, visual, phrases, scale)
    logits = (
        scale.exp()
        * torch.nn.functional.normalize(visual, dim=-1)
        @ torch.nn.functional.normalize(text, dim=-1).T
    )
    # Reference: -log of the softmax mass each row puts on its positives, averaged as soft targets do.
    positives = [[j for j in range(4) if phrases[j] == phrases[i]] for i in range(4)]

    def direction(lg: torch.Tensor) -> torch.Tensor:
        logp = lg.log_softmax(1)
        return torch.stack([-logp[i, pos].mean() for i, pos in enumerate(positives)]).mean()

    torch.testing.assert_close(loss, (direction(logits) + direction(logits.T)) / 2)
    # Matching embeddings score far lower than unrelated ones; one phrase alone has nothing to contrast.
    assert prompt_contrastive_loss(text, text.clone(), ["a", "b", "c", "d"], torch.tensor(3.0)) < loss
    assert prompt_contrastive_loss(text, visual, ["a"] * 4, scale) is None


def test_dense_label_loss_scores_each_patch_against_its_class_shares():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 2, 3)  # B x h x w x K
    label = torch.randint(0, 3, (2, 4, 4))
    label[0, :2, :2] = 255  # patch (0, 0) of image 0 is unlabelled: left out
    label[1, 2:, 2:] = torch.tensor([[255, 255], [255, 1]])  # a quarter labelled: also left out
    label[1, :2, 2:] = torch.tensor([[255, 2], [2, 0]])  # three quarters: target 2/3 class 2, 1/3 class 0
    terms = []
    for b in range(2):
        for i in range(2):
            for j in range(2):
                pixels = label[b, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].flatten()
                pixels = pixels[pixels != 255]
                if len(pixels) < 2:
                    continue
                shares = torch.bincount(pixels, minlength=3).float() / len(pixels)
                terms.append(-(shares * logits[b, i, j].log_softmax(-1)).sum())
    assert len(terms) == 6
    torch.testing.assert_close(dense_label_loss(logits, label), torch.stack(terms).mean())
    assert dense_label_loss(logits, torch.full((2, 4, 4), 255)) is None
    with pytest.raises(ValueError, match=r"\[3\]"):
        dense_label_loss(logits, torch.full((2, 4, 4), 3))


def test_dense_label_head_trains_and_stays_out_of_the_exported_model(tmp_path, capsys):
    folder = fit(tmp_path)  # the shapes-tiny recipe trains the head on category maps
    checkpoint = load_lightning_checkpoint(folder / "last.ckpt")
    head = {k.removeprefix("losses.") for k in checkpoint["state_dict"] if k.startswith("losses.dense_head.")}
    assert head == {"dense_head.0.weight", "dense_head.0.bias", "dense_head.1.weight", "dense_head.1.bias"}
    exported = ClipSeg.from_pretrained(pack_checkpoint(folder / "last.ckpt", tmp_path / "zoo", "t"))
    module = module_from_checkpoint(folder / "last.ckpt")
    assert exported.state_dict().keys() == module.model.state_dict().keys()
    # Without label maps the auxiliary term has nothing to score: the run refuses, naming what is missing.
    with pytest.raises(ValueError, match="label"):
        fit(tmp_path / "no-labels", "--data.init_args.category_labels", "false")
    # A frozen vision tower has nothing to learn from it: the CLI refuses, naming the clash.
    args = ["fit", "--config", CONFIG, *SHORT, "--model.config.freeze_backbone", "true"]
    assert run_cli([*args, "--output_root", str(tmp_path / "frozen")]) == 2
    assert "freeze_backbone" in capsys.readouterr().err


def test_identity_film_starts_prompt_independent(model_and_tokenizer):
    model, _ = model_and_tokenizer
    fresh = ClipSeg(model.config).eval()
    fresh.decoder.reset_film_to_identity()
    image, prompts = torch.randn(1, 3, 32, 32), torch.randn(2, model.prompt_dim)
    with torch.no_grad():
        logits = fresh(image, prompts)
        default = model(image, prompts)
    torch.testing.assert_close(logits[:, 0], logits[:, 1])
    assert not torch.allclose(default[:, 0], default[:, 1])  # the default init does depend on the prompt


def test_frozen_named_backbone_is_not_in_checkpoints_and_reloads_from_its_name(tmp_path, tiny_backbone_dir):
    named = ["--model.config.backbone", str(tiny_backbone_dir), "--model.config.freeze_backbone", "true"]
    named += [
        "--model.losses.init_args.dense_label_weight",
        "0",
    ]  # it trains the vision tower, which is frozen here
    folder = fit(tmp_path, *named, "--model.tokenizer_corpus", "null")
    checkpoint = load_lightning_checkpoint(folder / "last.ckpt")  # weights_only=True
    assert checkpoint["global_step"] == 2
    assert checkpoint["ShapesDataModule"] == {"global_step": 2}  # a resume draws fresh train streams
    keys = list(checkpoint["state_dict"])
    assert keys and all(k.startswith("model.decoder.") for k in keys)
    module = module_from_checkpoint(folder / "last.ckpt")
    for key, value in checkpoint["state_dict"].items():
        torch.testing.assert_close(module.state_dict()[key], value)
    assert not any(p.requires_grad for p in module.model.backbone.parameters())
    args = ["validate", "--config", CONFIG, *SHORT, *named, "--model.tokenizer_corpus", "null"]
    args += [
        "--output_root",
        str(tmp_path),
        "--trainer.logger",
        "false",
        "--ckpt_path",
        str(folder / "last.ckpt"),
    ]
    assert run_cli(args) == 0


def test_zoo_export_updates_the_card_and_records_measured_quality(tmp_path, monkeypatch):
    folder = fit(tmp_path)
    zoo = tmp_path / "zoo"
    shutil.copytree(repo_zoo_dir(), zoo)
    monkeypatch.setenv("CLIPSEG_ZOO", str(zoo))
    shipped = get_card("shapes-tiny")
    assert shipped.measured
    export = ["export", "--ckpt", str(folder / "last.ckpt"), "--name", "shapes-tiny"]
    assert zoo_main(export) == 0
    card = get_card("shapes-tiny")
    assert card.sha256 == sha256_of(zoo / card.filename) != shipped.sha256
    assert card.measured == {}  # the shipped numbers described other weights
    assert zoo_main([*export, "--quality-scenes", "3"]) == 0
    scores = shapes_quality_over_seeds(clipseg.load_model("shapes-tiny"), n=3, progress=False)
    measured = {k.removeprefix("shapes-quality/"): v for k, v in get_card("shapes-tiny").measured.items()}
    assert measured.pop("scenes") == 3 and measured.pop("seeds") == list(QUALITY_SEEDS)
    assert {"text_miou", "visual_miou", "swapped_miou", "absent_marked_fraction", "text_miou_worst"} <= set(
        measured
    )
    assert measured == {k: round(scores[k], 4) for k in measured}
    # The same checkpoint exported again is the same file (same digest), so its numbers stay.
    assert zoo_main(export) == 0
    assert get_card("shapes-tiny").measured["shapes-quality/scenes"] == 3


def test_zoo_export_to_a_file_outside_the_zoo_needs_no_name(tmp_path, capsys):
    ckpt = str(fit(tmp_path) / "last.ckpt")
    out = tmp_path / "elsewhere" / "mine.safetensors"
    assert zoo_main(["export", "--ckpt", ckpt, "--out", str(out)]) == 0
    assert metadata_of(out)[META_NAME] == "mine"  # named after the file
    capsys.readouterr()
    assert zoo_main(["export", "--ckpt", ckpt, "--out", str(tmp_path / "folder")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clipseg zoo: error:") and "--name" in err


def test_init_from_starts_a_run_from_a_model_file_and_refuses_one_that_does_not_fit(tmp_path):
    folder = fit(tmp_path)
    path = str(pack_checkpoint(folder / "last.ckpt", tmp_path / "zoo", "t"))
    trained = module_from_checkpoint(folder / "last.ckpt")
    hparams = dict(trained.hparams)
    started = ClipSegModule(**hparams | {"init_from": path}).model.state_dict()
    fresh = ClipSegModule(**hparams | {"init_from": None}).model.state_dict()
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(started[key], value)
    assert not all(torch.equal(fresh[k], v) for k, v in started.items())
    with pytest.raises(ValueError, match=r"'.*' \(init_from\) does not match the model:(.|\n)*wrong shape"):
        ClipSegModule(**hparams | {"config": hparams["config"] | {"reduce_dim": 16}, "init_from": path})
    with pytest.raises(ValueError, match="tokenizer differs"):
        ClipSegModule(**hparams | {"tokenizer_corpus": ["red circle"], "init_from": path})
    # A fine-tuned run's checkpoint holds all its weights: it reloads without the file it started from.
    tuned = fit(tmp_path / "tuned", "--model.init_from", path)
    Path(path).unlink()
    checkpoint = load_lightning_checkpoint(tuned / "last.ckpt")
    assert checkpoint["hyper_parameters"]["init_from"] == path  # the run still says where it started
    reloaded = module_from_checkpoint(tuned / "last.ckpt").state_dict()
    for key, value in checkpoint["state_dict"].items():
        torch.testing.assert_close(reloaded[key], value)


def test_export_writes_a_zoo_file_that_predicts_like_the_checkpoint(tmp_path):
    folder = fit(tmp_path)
    path = pack_checkpoint(folder / "last.ckpt", tmp_path / "zoo", "shapes-tiny")
    assert path == tmp_path / "zoo" / "shapes-tiny.safetensors"
    module = module_from_checkpoint(folder / "last.ckpt")
    model, tokenizer = ClipSeg.from_pretrained(path).eval(), read_tokenizer(path)
    assert tokenizer.get_vocab() == module.tokenizer.get_vocab()  # the corpus-built tokenizer travels along
    enc = tokenize_prompts(tokenizer, ["a photo of a red circle.", "large blue square"], return_tensors="pt")
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = module.model(image, module.model.encode_text(**enc))
        got = model(image, model.encode_text(**enc))
    torch.testing.assert_close(got, want)


def test_training_feeds_the_models_preprocessing_and_its_file_records_it(tmp_path, tiny_backbone_dir):
    config = ClipSegConfig(
        backbone=str(tiny_backbone_dir),
        extract_layers=(1, 2),
        reduce_dim=8,
        image_size=32,
        image_resample="bicubic",
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.25, 0.25, 0.25),
    )
    short = {"max_steps": 1, "limit_val_batches": 0, "logger": False, "enable_checkpointing": False}
    short |= {"enable_progress_bar": False, "accelerator": "cpu", "default_root_dir": tmp_path}
    module = ClipSegModule(config=config)
    data = ShapesDataModule(image_size=32, batch_size=2, num_workers=0, val_length=2, scene_size=48)
    Trainer(**short).fit(module, data)
    assert data.preprocessing == config.preprocessing
    scene = next(iter(data.dataset("val")))
    raw = next(
        iter(ShapesDataModule(image_size=32, num_workers=0, val_length=2, scene_size=48).dataset("val"))
    )
    assert not torch.allclose(scene["image"], raw["image"])  # not the default bilinear and CLIP mean / std
    saved = ClipSeg.from_pretrained(module.model.save_pretrained(tmp_path / "model"))
    assert saved.config.preprocessing == config.preprocessing
    with pytest.raises(ValueError, match="image_size 48 differs from the model's image_size 32"):
        Trainer(**short).fit(ClipSegModule(config=config), ShapesDataModule(image_size=48, num_workers=0))


def test_predict_step_skips_the_contrastive_term_that_only_training_needs(tmp_path):
    folder = fit(tmp_path, "--model.losses.init_args.contrastive_weight", "1.0")
    module = module_from_checkpoint(folder / "last.ckpt")
    assert module.losses.contrastive_weight == 1.0
    data = ShapesDataModule(image_size=32, batch_size=4, num_workers=0, visual_prob=1.0, val_length=4)
    batch = collate(list(data.dataset("val")))
    del batch["phrase"]  # prediction inputs need no untemplated phrase
    with pytest.raises(KeyError, match="phrase"):
        module.model_step(batch)  # the training loss pairs support images with their phrases
    with torch.no_grad():
        out = module.predict_step(batch, 0)
        want = torch.sigmoid(
            module.model(batch["image"], batch_conditionals(module.model, module.tokenizer, batch)[:, None])
        )
    assert out["sample_id"] == batch["sample_id"]
    torch.testing.assert_close(out["probs"], want[:, 0])


def test_default_logger_is_offline_wandb_under_the_run_folder_with_overlays(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = [
        "fit",
        "--config",
        CONFIG,
        *SHORT,
        "--output_root",
        str(tmp_path),
        "--overlays.every_n_steps",
        "1",
    ]
    assert run_cli(args) == 0
    runs = list((tmp_path / "shapes-tiny" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].rglob("train/samples*.png"))  # the sample overlays
    assert (tmp_path / "shapes-tiny" / "config.yaml").is_file()


@pytest.mark.parametrize(
    ("cuda", "bf16", "accelerator", "want"),
    [
        (False, False, "auto", "32-true"),
        (True, True, "auto", "bf16-mixed"),
        (True, False, "gpu", "16-mixed"),
        (True, True, "cpu", "32-true"),
    ],
)
def test_precision_is_decided_by_the_hardware(monkeypatch, cuda, bf16, accelerator, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert auto_precision(accelerator) == want


def test_resume_restores_the_datamodule_step_before_building_the_train_stream(tmp_path, monkeypatch):
    first_epochs = []
    build = ShapesDataModule.dataset

    def recording(self, stage):
        if stage == "train":
            first_epochs.append(self.train_first_epoch)
        return build(self, stage)

    monkeypatch.setattr(ShapesDataModule, "dataset", recording)
    fit(tmp_path)
    fit(tmp_path, "--trainer.max_steps", "4", "--ckpt_path", "last")
    assert first_epochs == [0, 2]  # the resumed run does not replay the first run's stream


def test_schedule_steps_sets_the_cosine_length_apart_from_max_steps(tmp_path, tiny_backbone_dir):
    config = ClipSegConfig(
        backbone=str(tiny_backbone_dir), extract_layers=(1, 2), reduce_dim=8, image_size=32
    )
    short = {"max_steps": 4, "limit_val_batches": 0, "logger": False, "enable_checkpointing": False}
    short |= {"enable_progress_bar": False, "accelerator": "cpu", "default_root_dir": tmp_path}
    final_lr = {}
    for schedule_steps in (None, 8):
        module = ClipSegModule(config=config, lr=1e-3, min_lr=0.0, schedule_steps=schedule_steps)
        trainer = Trainer(**short)
        trainer.fit(module, ShapesDataModule(image_size=32, batch_size=2, num_workers=0, scene_size=48))
        final_lr[schedule_steps] = trainer.optimizers[0].param_groups[0]["lr"]
    assert final_lr[None] == pytest.approx(0.0)  # the cosine ends with the run
    assert final_lr[8] == pytest.approx(
        0.5e-3 * (1 + math.cos(math.pi * 4 / 8))
    )  # halfway through its 8 steps
