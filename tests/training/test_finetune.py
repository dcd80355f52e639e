"""``configs/finetune.yaml`` end to end: prepare a folder / COCO file, fine-tune a few steps, predict with the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixture_data.custom_formats import write_small_coco, write_small_folder
from lightning.pytorch.loggers import WandbLogger
from safetensors import safe_open
from safetensors.torch import load_file

import clipseg
from clipseg.cli import main as clipseg_main
from clipseg.cli.train import run_cli
from clipseg.core.config import ClipSegConfig
from clipseg.data.prepare import prepare
from clipseg.modeling import ClipSeg
from clipseg.modeling.clipseg import META_NAME
from clipseg.training.callbacks import SampleOverlays
from clipseg.training.finetune_output import PackModel, blend_files, blend_with_base, finetune_metadata
from clipseg.training.module import ClipSegModule
from clipseg.training.pack import pack_checkpoint, pack_module

FINETUNE = str(Path(__file__).resolve().parents[2] / "configs" / "finetune.yaml")
FEW_STEPS = [
    "--trainer.max_steps", "4",
    "--trainer.val_check_interval", "2",
    "--trainer.logger", "false",
    "--trainer.accelerator", "cpu",
    "--data.init_args.batch_size", "4",
    "--data.init_args.num_workers", "0",
    "--checkpoint.every_n_train_steps", "2",
]  # fmt: skip


def _fit(entry, data_dir: Path, out: Path, init_from: str = "shapes-tiny", *extra: str) -> Path:
    args = ["fit", "--config", FINETUNE, "--model.init_from", init_from, "--data.init_args.data_dir"]
    argv = [*args, str(data_dir), *FEW_STEPS, *extra, "--output_root", str(out), "--name", "mine"]
    assert entry(argv) == 0
    return out / "mine" / "model.safetensors"


@pytest.mark.parametrize("source", ["folder", "coco"])
def test_prepare_finetune_and_predict_with_the_exported_file(source, tmp_path, capsys):
    if source == "folder":
        prepare("folder", write_small_folder(tmp_path / "raw", n=12), tmp_path / "data")
        entry = clipseg_main  # `clipseg fit`
    else:
        instances = write_small_coco(tmp_path / "raw", n=12)
        prepare("coco", instances, tmp_path / "data", options={"images": str(tmp_path / "raw" / "images")})
        entry = run_cli  # what `lightning fit` runs
    # 5 steps, validation every 2: the file records both the steps trained and the last validation's step
    # (a checkpoint at every step: the last one holds the weights the run ended with)
    steps = ["--trainer.max_steps", "5", "--checkpoint.every_n_train_steps", "1"]
    model_file = _fit(entry, tmp_path / "data", tmp_path / "runs", "shapes-tiny", *steps)
    record = finetune_metadata(model_file)
    assert record["base_model"] == "shapes-tiny" and record["data_dir"] == str(tmp_path / "data")
    assert record["steps"] == 5 and record["val_step"] == 4
    assert {"val/miou_0.5", "val/fgiou_0.5", "val/ap"} <= set(record["val_metrics"])
    assert "presence calibration: fitted" in capsys.readouterr().out
    tuned = clipseg.load_model(model_file)
    assert tuned.calibration is not None  # fitted on the run's val split when fit ended
    base = clipseg.load_model("shapes-tiny")
    assert (
        tuned.backend.model.config == base.backend.model.config
    )  # architecture, input size and normalization
    assert tuned.backend.tokenizer.get_vocab() == base.backend.tokenizer.get_vocab()
    changed = load_file(str(model_file))["backbone.clip.vision_model.embeddings.patch_embedding.weight"]
    # shapes-tiny's backbone was trained here: it fine-tunes end to end
    assert not torch.equal(
        changed,
        base.backend.model.state_dict()["backbone.clip.vision_model.embeddings.patch_embedding.weight"],
    )
    image = next((tmp_path / "raw" / "images").glob("*.png"))
    capsys.readouterr()
    argv = ["predict", str(image), "--prompt", "red circle", "--model", str(model_file)]
    assert clipseg_main([*argv, "--out", str(tmp_path / "pred"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert Path(summary["images"][0]["masks"][0]["file"]).is_file()
    # `clipseg zoo pack` of the run's checkpoint gives the same weights (the tokenizer comes from init_from)
    exported = pack_checkpoint(
        tmp_path / "runs" / "mine" / "checkpoints" / "last.ckpt", tmp_path / "z.safetensors", "z"
    )
    # and the file is those trained weights blended with the base by the record's weight (the defaults blend)
    trained, written = load_file(str(exported)), load_file(str(model_file))
    assert trained.keys() == written.keys() and record["base_weight"] > 0
    key = "backbone.clip.vision_model.embeddings.patch_embedding.weight"
    expected = torch.lerp(trained[key], base.backend.model.state_dict()[key], record["base_weight"])
    assert torch.allclose(written[key], expected, atol=1e-6)


def test_a_pretrained_named_backbone_stays_frozen_and_exports_decoder_only(tmp_path, tiny_backbone_dir):
    config = ClipSegConfig(
        backbone=str(tiny_backbone_dir), extract_layers=(1, 2, 3), image_size=32, reduce_dim=16
    )
    ClipSeg(config).save_pretrained(tmp_path / "base")
    module = ClipSegModule(init_from=str(tmp_path / "base" / "model.safetensors"))
    trainable = {n.split(".")[1] for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"decoder"} and module.model.config.image_size == 32
    prepare("folder", write_small_folder(tmp_path / "raw", n=6), tmp_path / "data")
    model_file = _fit(
        run_cli, tmp_path / "data", tmp_path / "runs", str(tmp_path / "base" / "model.safetensors")
    )
    assert all(key.startswith("decoder.") for key in load_file(str(model_file)))
    assert clipseg.load_model(model_file).predict(np.zeros((20, 30, 3), np.uint8), "red circle").shape == (
        1,
        20,
        30,
    )


def test_without_config_or_init_from_the_module_says_what_to_set():
    with pytest.raises(ValueError, match=r"model\.init_from"):
        ClipSegModule()


class _Recorder(WandbLogger):
    def __init__(self) -> None:
        super().__init__(offline=True)
        self.logged: list[tuple[str, int]] = []

    def log_image(self, key, images, step=None, **kwargs) -> None:
        self.logged.append((key, len(images)))


def test_validation_overlays_reach_the_logger(tmp_path):
    from types import SimpleNamespace

    from clipseg.data.finetune import FineTuneDataModule

    prepare("folder", write_small_folder(tmp_path / "raw", n=12), tmp_path / "data")
    module = ClipSegModule(init_from="shapes-tiny")
    data = FineTuneDataModule(data_dir=str(tmp_path / "data"), image_size=96, batch_size=2, num_workers=0)
    batch = next(iter(data.val_dataloader()))
    recorder = _Recorder()
    trainer = SimpleNamespace(loggers=[recorder], is_global_zero=True, sanity_checking=False, global_step=3)
    overlays = SampleOverlays(every_n_steps=1, max_samples=2)
    overlays.on_validation_batch_end(trainer, module, {}, batch, 1)  # only the first batch is drawn
    overlays.on_validation_batch_end(trainer, module, {}, batch, 0)
    assert recorder.logged == [("val/samples", 2)]


def test_the_data_takes_input_size_and_normalization_from_the_model(tmp_path):
    from clipseg.data.finetune import FineTuneDataModule

    config = ClipSegConfig(backbone={}, image_size=40, image_mean=(0.5, 0.5, 0.5), image_std=(0.2, 0.3, 0.4))
    data = FineTuneDataModule(data_dir=str(tmp_path))
    data.use_model_preprocessing(config.preprocessing)  # what ClipSegModule.setup hands over
    transform = data.transform(train=False)
    assert data.image_size == 40 and transform.image_size == 40
    item = transform({"sample_id": "s", "image": np.full((8, 8, 3), 255, np.uint8), "mask": np.zeros((8, 8))})
    assert torch.allclose(item["image"][:, 0, 0], torch.tensor([2.5, 5 / 3, 1.25]))  # (1 - mean) / std
    same = FineTuneDataModule(data_dir=str(tmp_path), image_size=40)
    same.use_model_preprocessing(config.preprocessing)
    assert same.preprocessing.mean == (0.5, 0.5, 0.5)
    other = FineTuneDataModule(data_dir=str(tmp_path), image_size=64)
    with pytest.raises(ValueError, match="image_size 64 differs from the model's image_size 40"):
        other.use_model_preprocessing(config.preprocessing)


@pytest.mark.timeout(120)  # it waited at step 0 forever (issue 36, defect 4)
def test_fit_on_a_data_folder_that_does_not_exist_is_one_error_line(tmp_path, capsys):
    args = ["fit", "--config", FINETUNE, "--data.init_args.data_dir", str(tmp_path / "nope")]
    assert clipseg_main([*args, *FEW_STEPS, "--output_root", str(tmp_path / "runs")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: no shards match") and "nope" in err[0]


def _shifted_module() -> ClipSegModule:
    """shapes-tiny as a fine-tuning run starts it, with every floating-point weight moved by +1."""
    module = ClipSegModule(init_from="shapes-tiny")
    with torch.no_grad():
        for tensor in module.model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(1.0)
    return module


def test_blend_with_base_moves_the_weights_back_towards_the_base_by_its_weight():
    base = clipseg.load_model("shapes-tiny").backend.model.state_dict()
    model = _shifted_module().model
    blend_with_base(model, "shapes-tiny", 0.25)
    for key, tensor in model.state_dict().items():
        expected = base[key] + 0.75 if tensor.is_floating_point() else base[key]
        assert torch.allclose(tensor, expected, atol=1e-5), key
    with pytest.raises(ValueError, match=r"base_weight 1\.5"):
        blend_with_base(model, "shapes-tiny", 1.5)


def test_export_model_writes_the_blend_and_leaves_the_module_as_trained(tmp_path):
    from types import SimpleNamespace

    module = _shifted_module()
    trained = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = SimpleNamespace(
        is_global_zero=True, default_root_dir=str(tmp_path / "run"), datamodule=None, global_step=7
    )
    PackModel(base_weight=0.5).on_fit_end(trainer, module)
    written = load_file(str(tmp_path / "run" / "model.safetensors"))
    base = clipseg.load_model("shapes-tiny").backend.model.state_dict()
    key = "backbone.clip.vision_model.embeddings.patch_embedding.weight"
    assert torch.allclose(written[key], base[key] + 0.5, atol=1e-5)
    assert all(torch.equal(v, trained[k]) for k, v in module.model.state_dict().items())
    assert finetune_metadata(tmp_path / "run" / "model.safetensors")["base_weight"] == 0.5


def test_blend_files_writes_the_blend_under_the_out_file_name(tmp_path):
    tuned = pack_module(_shifted_module(), tmp_path / "tuned.safetensors", "tuned")
    out = blend_files(str(tuned), "shapes-tiny", 0.5, tmp_path / "blend" / "mine.safetensors")
    base = clipseg.load_model("shapes-tiny").backend.model.state_dict()
    key = "backbone.clip.vision_model.embeddings.patch_embedding.weight"
    assert torch.allclose(load_file(str(out))[key], base[key] + 0.5, atol=1e-5)
    with safe_open(str(out), framework="numpy") as handle:
        assert handle.metadata()[META_NAME] == "mine"
