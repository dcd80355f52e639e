"""The documented `clipseg prepare` commands (README and docs/) write where `configs/` and `eval-all` read
(issue 15)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from fixture_data.raw_formats import write_pascal5i, write_phrasecut, write_refmatte

from clipseg.cli import main
from clipseg.cli.train import run_cli
from clipseg.eval.benchmarks import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
# Users' own data ("folder", "coco") has no default folder: its commands name --out themselves.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_COMMANDS = [
    command
    for document in DOCUMENTS
    for command in re.findall(r"^clipseg prepare [^#\n]*", document.read_text(), flags=re.M)
    if shlex.split(command)[2] not in ("folder", "coco")
]
RAW = {"phrasecut": write_phrasecut, "pascal5i": write_pascal5i, "refmatte": write_refmatte}
# Fixture-sized runs: fewer splits and episodes, which do not change where the shards go.
SMALL_DATA = {
    "phrasecut": ["--splits", "test"],
    "pascal5i": ["--splits", "test", "--option", "n_episodes=4"],
    "refmatte": ["--splits", "test"],
}
# dataset of a README command → (config that reads it, or None) and the eval-all benchmark that reads it
READERS = {
    "phrasecut": ("vitb16.yaml", "phrasecut"),
    "pascal5i": ("pascal5i-fold0.yaml", "pascal5i-fold0"),
    "refmatte": (None, "refmatte-keyword"),
}


def test_the_readme_names_a_prepare_command_per_dataset_family():
    assert sorted(shlex.split(c)[2] for c in README_COMMANDS) == sorted(RAW)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Each README command, run as written (raw fixtures as --src) with $CLIPSEG_DATA set."""
    root = tmp_path_factory.mktemp("data")
    raw = tmp_path_factory.mktemp("raw")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLIPSEG_DATA", str(root))
        for command in README_COMMANDS:
            args = [os.path.expandvars(arg) for arg in shlex.split(command)[1:]]
            dataset = args[1]
            RAW[dataset](raw / dataset, **({"split": "test"} if dataset == "phrasecut" else {}))
            args[args.index("--src") + 1] = str(raw / dataset)
            assert main([*args, *SMALL_DATA[dataset]]) == 0, command
    return root


@pytest.mark.parametrize("dataset", sorted(READERS))
def test_each_readme_command_feeds_its_config_and_eval_all(
    prepared, dataset, tiny_backbone_dir, tmp_path, monkeypatch
):
    config, benchmark = READERS[dataset]
    bench = next(b for b in BENCHMARKS if b.name == benchmark)
    assert bench.missing_data(prepared) is None
    if config is None:
        return
    monkeypatch.setenv("CLIPSEG_DATA", str(prepared))
    args = [
        "test", "--config", str(ROOT / "configs" / config),
        "--trainer.fast_dev_run", "1", "--trainer.logger", "false", "--trainer.accelerator", "cpu",
        "--data.init_args.image_size", "32", "--data.init_args.batch_size", "2",
        "--data.init_args.num_workers", "0", "--model.config.image_size", "32",
        "--model.config.backbone", str(tiny_backbone_dir), "--output_root", str(tmp_path),
    ]  # fmt: skip
    assert run_cli(args) == 0
