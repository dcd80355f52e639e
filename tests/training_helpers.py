"""A 2-step shapes-tiny fit at 32 px, shared by the tests that need a real `clipseg fit` run folder."""

from __future__ import annotations

from pathlib import Path

from clipseg.cli import train as cli

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "shapes-tiny.yaml")
SHORT = [
    "--trainer.max_steps", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.val_check_interval", "2",
    "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false",
    "--data.init_args.image_size", "32",
    "--data.init_args.batch_size", "2",
    "--data.init_args.num_workers", "0",
    "--data.init_args.val_length", "4",
    "--model.config.image_size", "32",
]  # fmt: skip


def short_fit(root: Path, *extra: str, expect: int = 0) -> Path:
    """Train shapes-tiny for 2 steps into ``root``; returns the checkpoint folder."""
    args = ["fit", "--config", CONFIG, *SHORT, "--output_root", str(root), "--trainer.logger", "false"]
    assert cli.run_cli([*args, *extra]) == expect
    return root / "shapes-tiny" / "checkpoints"
