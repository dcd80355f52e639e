"""``clipseg fit`` for a user with a pip install: shipped configs by name, the documented numbers are the
config's, and a model to start from that is no model is one ``error:`` line (issue 36, defects 7, 16)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tomllib
import yaml
from PIL import Image

from clipseg.cli.train import run_cli
from clipseg.training import lightning_cli as cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["unknown name", "image file"])
def test_init_from_that_is_no_model_is_one_error_line(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)  # no configs/ here: `--config finetune` is the shipped one
    init_from = "nope"
    if kind == "image file":
        init_from = str(tmp_path / "photo.png")
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(init_from)
    out = tmp_path / "outputs"
    args = ["fit", "--config", "finetune", "--model.init_from", init_from]
    assert run_cli([*args, "--output_root", str(out), "--wandb_mode", "disabled"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: model.init_from: "), errors
    assert init_from in errors[0]
    assert not out.exists()


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = str(cli.SHIPPED_CONFIGS / "finetune.yaml")
    assert cli.find_config("finetune") == cli.find_config("finetune.yaml") == shipped
    assert cli.find_config("configs/finetune.yaml") == shipped  # the README's spelling
    own = tmp_path / "finetune.yaml"
    own.write_text("name: mine\n")
    assert cli.find_config("finetune.yaml") == "finetune.yaml"  # a file here wins
    with pytest.raises(cli.ConfigurationError, match=r"no shipped config.*finetune"):
        cli.find_config("elsewhere/finetune.yaml")
    with pytest.raises(cli.ConfigurationError, match="nope"):
        cli.find_config("nope")


def test_the_repository_configs_are_the_packaged_ones():
    assert (ROOT / "configs").resolve() == cli.SHIPPED_CONFIGS  # one copy: the top-level folder links there
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "configs/*.yaml" in package_data["clipseg"]
    assert sorted(cli.SHIPPED_CONFIGS.glob("*.yaml"))  # not an empty folder


def test_the_docs_state_the_fine_tuning_configs_learning_rates():
    config = yaml.safe_load((cli.SHIPPED_CONFIGS / "finetune.yaml").read_text())["model"]
    page = (ROOT / "docs" / "fine-tune.md").read_text()
    found = re.search(r"AdamW ([0-9.e-]+) after \d+ warm-up steps, cosine to ([0-9.e-]+)", page)
    assert found is not None, "the fine-tuning defaults moved out of docs/fine-tune.md: update this test"
    assert (float(found.group(1)), float(found.group(2))) == (config["lr"], config["min_lr"])
