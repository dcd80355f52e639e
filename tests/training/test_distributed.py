"""Real ``lightning`` processes: 2-process DDP on CPU (gloo), two "nodes" on 127.0.0.1, and resuming after
SIGTERM / SIGKILL."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from net_helpers import free_port

LIGHTNING = str(Path(sys.executable).with_name("lightning"))
CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "shapes-tiny.yaml")
SMALL = [
    "--config", CONFIG,
    "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--data.init_args.image_size", "32",
    "--data.init_args.batch_size", "2",
    "--data.init_args.num_workers", "0",
    "--data.init_args.val_length", "8",
    "--model.config.image_size", "32",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def start(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(
            [LIGHTNING, *args], stdout=out, stderr=subprocess.STDOUT, env={**ENV, **(env or {})}
        )


def finish(process: subprocess.Popen, log: Path, timeout: float = 300) -> int:
    code = process.wait(timeout=timeout)
    assert code in (0, 143), log.read_text()[-3000:]
    return code


def csv_logger(folder: Path) -> list[str]:
    return [
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(folder),
    ]


def val_metrics(folder: Path) -> dict[str, float]:
    """The last logged value of every ``val/*`` metric under a CSVLogger folder."""
    found: dict[str, float] = {}
    for path in sorted(folder.rglob("metrics.csv")):
        with open(path) as f:
            for row in csv.DictReader(f):
                found.update({k: float(v) for k, v in row.items() if k.startswith("val/") and v})
    return found


@pytest.mark.slow
def test_ddp_two_processes_validate_like_one(tmp_path):
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.max_steps", "3"]
    ddp += ["--trainer.val_check_interval", "3", "--output_root", str(tmp_path)]
    log = tmp_path / "log.txt"
    finish(start("fit", *SMALL, *ddp, *csv_logger(tmp_path / "ddp"), log=log), log)
    assert_validates_like_one_process(tmp_path, tmp_path / "ddp", log)


def assert_validates_like_one_process(tmp_path: Path, logged: Path, log: Path) -> None:
    """The 3-step checkpoint under ``tmp_path``, validated by one process, gives the metrics logged under
    ``logged`` by the distributed run (its validation split over the ranks)."""
    checkpoint = tmp_path / "shapes-tiny" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 3
    single = [
        "--trainer.devices",
        "1",
        "--ckpt_path",
        str(checkpoint),
        "--output_root",
        str(tmp_path / "one"),
    ]
    finish(start("validate", *SMALL, *single, *csv_logger(tmp_path / "single"), log=log), log)
    two, one = val_metrics(logged), val_metrics(tmp_path / "single")
    keys = {k for k in one if k != "val/loss"}  # the loss is a mean of rank means; the metrics are exact sums
    assert {"val/miou_0.3", "val/fgiou_0.5", "val/ap"} <= keys
    assert {k: two[k] for k in keys} == pytest.approx({k: one[k] for k in keys}, abs=1e-6)


@pytest.mark.slow
def test_two_nodes_on_loopback_train_and_validate_like_one_process(tmp_path):
    """``--trainer.num_nodes 2``: two processes as node 0 and 1 (``NODE_RANK``), rendezvous on 127.0.0.1
    (what torchrun or SLURM sets up across machines); node 1 keeps its own output folder, as on its own disk."""
    run = ["--trainer.strategy", "ddp", "--trainer.num_nodes", "2", "--trainer.devices", "1"]
    run += ["--trainer.max_steps", "3", "--trainer.val_check_interval", "3"]
    network = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    logs = [tmp_path / "node0.txt", tmp_path / "node1.txt"]
    nodes = [
        start(
            "fit",
            *SMALL,
            *run,
            "--output_root",
            str(tmp_path if rank == 0 else tmp_path / "node1"),
            *csv_logger(tmp_path / f"nodes{rank}"),
            log=logs[rank],
            env={**network, "NODE_RANK": str(rank)},
        )
        for rank in (0, 1)
    ]
    for node, log in zip(nodes, logs):
        assert finish(node, log) == 0
    for rank, log in enumerate(
        logs
    ):  # each process is one rank of a world of two, and it stepped with the other
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log.read_text()
    assert_validates_like_one_process(tmp_path, tmp_path / "nodes0", logs[0])


def _wait_for_step(checkpoint: Path, above: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, (
            f"training ended before step {above} was saved:\n{log.read_text()[-3000:]}"
        )
        if checkpoint.is_file() and torch.load(checkpoint, weights_only=True)["global_step"] > above:
            return
        time.sleep(0.05)
    raise TimeoutError(f"no checkpoint beyond step {above}")


@pytest.mark.slow
def test_resume_after_sigterm_and_sigkill_reaches_the_same_final_step(tmp_path):
    run = [
        *SMALL,
        "--trainer.max_steps",
        "200",
        "--trainer.limit_val_batches",
        "0",
        "--trainer.logger",
        "false",
    ]
    run += ["--checkpoint.every_n_train_steps", "5", "--output_root", str(tmp_path)]
    checkpoint = tmp_path / "shapes-tiny" / "checkpoints" / "last.ckpt"
    log = tmp_path / "log.txt"

    process = start("fit", *run, log=log)
    _wait_for_step(checkpoint, 0, process, log)
    process.send_signal(signal.SIGTERM)  # preemption: save last.ckpt at the end of the running step
    assert finish(process, log) == 143
    stopped = torch.load(checkpoint, weights_only=True)["global_step"]
    assert 5 <= stopped < 200

    process = start("fit", *run, "--ckpt_path", "last", log=log)
    _wait_for_step(checkpoint, stopped, process, log)
    process.kill()  # kill -9: at most `every_n_train_steps` steps are lost
    process.wait()
    killed = torch.load(checkpoint, weights_only=True)["global_step"]
    assert stopped < killed < 200

    assert finish(start("fit", *run, "--ckpt_path", "last", log=log), log) == 0
    final = torch.load(checkpoint, weights_only=True)
    assert final["global_step"] == 200
    # Optimizer and schedule continued across both restarts instead of starting over (parameters of the
    # visual-prompt branch skip the batches without a support image, hence max).
    assert max(float(s["step"]) for s in final["optimizer_states"][0]["state"].values()) == 200
    assert final["lr_schedulers"][0]["last_epoch"] == 200
