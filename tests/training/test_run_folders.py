"""`clipseg fit` run folders: a used run name is never silently shared, an offline start leaves nothing,
and a short fit prints only what is about the run (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from training_helpers import CONFIG, SHORT, short_fit

from clipseg.cli import train as cli
from clipseg.core import hub_access as network

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_a_second_fresh_run_under_the_same_name_is_refused(tmp_path, capsys):
    folder = short_fit(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    short_fit(tmp_path, expect=2)
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--ckpt_path last" in err and "with `--overwrite`" in err
    assert sorted(p.name for p in folder.iterdir()) == before  # no last-v1.ckpt beside last.ckpt


def test_overwrite_starts_over_and_ckpt_path_resumes_in_place(tmp_path):
    short_fit(tmp_path)
    folder = short_fit(tmp_path, "--overwrite")  # a flag, as in predict
    assert "last.ckpt" in {p.name for p in folder.iterdir()}
    assert not list(folder.glob("*-v1.ckpt"))
    short_fit(tmp_path, "--trainer.max_steps", "4", "--ckpt_path", "last")
    assert not list(folder.glob("*-v1.ckpt"))


def test_an_unreachable_hub_is_asked_once(monkeypatch):
    calls = []

    def refuse(address, timeout):
        calls.append(address)
        raise OSError("connection refused")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(network.socket, "create_connection", refuse)
    network._endpoint_answers.cache_clear()
    assert not network.hub_reachable() and not network.hub_reachable()
    assert len(calls) == 1
    network._endpoint_answers.cache_clear()


def test_offline_fit_of_a_hub_backbone_fails_at_once_and_leaves_no_run_folder(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens: the hub is unreachable
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache
    }
    out = tmp_path / "outputs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipseg.cli",
            "fit",
            "--config",
            str(CONFIGS / "vitb16.yaml"),
            "--output_root",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "cannot be reached" in result.stderr and network.hub_command("download") in result.stderr
    assert "Retrying" not in result.stderr and "MaxRetryError" not in result.stderr
    assert not out.exists()


def test_a_short_fit_prints_no_dependency_noise_and_counts_steps(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["fit", "--config", CONFIG, *SHORT, "--output_root", str(tmp_path)]
    args[args.index("--trainer.enable_progress_bar") + 1] = "true"
    assert cli.run_cli(args) == 0
    printed = "".join(capfd.readouterr())
    for noise in ("anonymous", "LeafSpec", "IterableDataset", "litlogger", "litmodels"):
        assert noise not in printed, noise
    assert "step: 100%" in printed and "2/2" in printed and "Epoch" not in printed
