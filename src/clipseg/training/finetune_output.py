"""The end of a fine-tuning run: ``outputs/<name>/model.safetensors``, ready for ``clipseg.load_model``.

``PackModel`` (a callback of ``configs/finetune.yaml``) writes the trained model in the format of
``clipseg zoo pack`` when ``fit`` ends, with what the run started from and its last validation in
the metadata (``clipseg_finetune``, a JSON object; see ``finetune_metadata``), then fits its presence
calibration on the run's val split (``clipseg.training.calibrate``), as ``clipseg calibrate`` would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer
from safetensors import safe_open

from clipseg.modeling.clipseg import META_FINETUNE, finetune_record
from clipseg.training.calibrate import DEFAULT_LIMIT, calibrate
from clipseg.training.pack import pack_module


class PackModel(Callback):
    """Writes ``<run folder>/<filename>`` (the run folder is ``outputs/<name>``) when ``fit`` ends.

    The metadata records ``base_model`` (``init_from``), ``data_dir``, ``steps`` and ``val_metrics``
    (the ``val/…`` values of the last validation, at step ``val_step``).

    Args:
        filename: name of the model file inside the run folder.
        calibrate_limit: val rows the presence calibration is fitted on (0: no calibration).
    """

    def __init__(self, *, filename: str = "model.safetensors", calibrate_limit: int = DEFAULT_LIMIT) -> None:
        self.filename = filename
        self.calibrate_limit = calibrate_limit
        self.val_metrics: dict[str, float] = {}
        self.val_step: int | None = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        self.val_metrics = {k: round(float(v), 5) for k, v in metrics.items() if k.startswith("val/")}
        self.val_step = trainer.global_step

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        record = {
            "base_model": pl_module.hparams.get("init_from"),
            "data_dir": getattr(trainer.datamodule, "data_dir", None),
            "steps": trainer.global_step,
            "val_metrics": self.val_metrics,
            "val_step": self.val_step,
        }
        target = pack_module(
            pl_module,
            run_dir / self.filename,
            run_dir.name,
            {META_FINETUNE: json.dumps(record, sort_keys=True)},
        )
        print(f"fine-tuned model: {target} (load it with clipseg.load_model or `clipseg predict --model`)")
        print(calibrate_in_place(target, record["data_dir"], self.calibrate_limit))


def calibrate_in_place(model_file: Path, data_dir: str | None, limit: int) -> str:
    """Fit ``model_file``'s presence calibration on ``data_dir``'s val split and store it in the file;
    the line to print. A split it cannot fit on (one phrase only, no val rows) leaves the file
    uncalibrated (presence is then the maximum probability) and says why: the run's model is kept."""
    if not data_dir or limit <= 0:
        return "presence calibration: skipped (no data_dir or calibrate_limit 0)"
    try:
        calibrate(model_file, data_dir, model_file, limit=limit)
    except (ValueError, OSError, RuntimeError) as err:  # RuntimeError: ZooError (e.g. a backbone offline)
        return f"presence calibration: not fitted ({err}); `clipseg calibrate` fits one later"
    return f"presence calibration: fitted on up to {limit} rows of {data_dir}'s val split"


def finetune_metadata(path: str | Path) -> dict[str, Any]:
    """The ``clipseg_finetune`` record of a model file written by ``PackModel`` (``{}`` for other files)."""
    with safe_open(str(path), framework="numpy") as handle:
        return finetune_record(handle.metadata() or {})
