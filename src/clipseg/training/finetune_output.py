"""The end of a fine-tuning run: ``outputs/<name>/model.safetensors``, ready for ``clipseg.load_model``.

``PackModel`` (a callback of ``configs/finetune.yaml``) writes the trained model in the format of
``clipseg zoo pack`` when ``fit`` ends, with what the run started from and its last validation in
the metadata (``clipseg_finetune``, a JSON object; see ``finetune_metadata``), then fits its presence
calibration on the run's val split (``clipseg.training.calibrate``), as ``clipseg calibrate`` would.
It can write the weights part of the way back towards the starting model's (``blend_with_base``): the
weight-space ensemble of WiSE-FT (Wortsman et al., 2022), which keeps more of what the model knew
before at little cost to what it learnt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from safetensors import safe_open

from clipseg.modeling.clipseg import META_FINETUNE, ClipSeg, finetune_record, load_state
from clipseg.modeling.input_size import with_input_size
from clipseg.training.calibrate import DEFAULT_LIMIT, calibrate
from clipseg.training.module import ClipSegModule
from clipseg.training.pack import pack_module
from clipseg.zoo import load_weights


def blend_with_base(model: ClipSeg, base: str, base_weight: float) -> None:
    """Move ``model``'s floating-point weights ``base_weight`` of the way back to those of ``base`` (in place).

    ``(1 - base_weight) * tuned + base_weight * base``, tensor by tensor: 0 leaves ``model`` as it is,
    1 gives ``base`` back.

    Args:
        model: the fine-tuned model.
        base: zoo name or model file the fine-tuning started from (``init_from``); same architecture.
        base_weight: in [0, 1].

    Raises:
        ValueError: ``base_weight`` outside [0, 1]; ``CheckpointError`` (a ``ValueError``) when
            ``base``'s parameter names or shapes differ from ``model``'s.
    """
    if not 0.0 <= base_weight <= 1.0:
        raise ValueError(f"base_weight {base_weight}: use a number in [0, 1]")
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    load_state(model, load_weights(base)[0].state_dict(), source=f"{base!r} (the base to blend with)")
    with torch.no_grad():
        for key, tensor in model.state_dict().items():  # tensors that share the parameters' storage
            if tensor.is_floating_point():
                tensor.lerp_(tuned[key], 1.0 - base_weight)
            else:  # integer buffers (position ids): the model's own
                tensor.copy_(tuned[key])


def blend_files(model: str, base: str, base_weight: float, out: str | Path) -> Path:
    """Write the model file ``out``: ``model``'s weights blended with ``base``'s (``blend_with_base``).

    How ``make shapes-tiny-v2`` blends the v2 training back towards v1. Tokenizer and metadata are
    ``model``'s; the zoo name stored is ``out``'s file name without its suffix.
    """
    module = ClipSegModule(init_from=model)
    blend_with_base(module.model, base, base_weight)
    return pack_module(module, out, Path(out).stem)


def resize_file(model: str, image_size: int, out: str | Path) -> Path:
    """Write the model file ``out``: ``model`` moved to ``image_size`` px inputs (``input_size.with_input_size``).

    What a run at another input size starts from (``init_from`` resamples alike), and so the base to
    blend such a run's weights with. Tokenizer is ``model``'s; the zoo name stored is ``out``'s stem.
    """
    module = ClipSegModule(init_from=model)
    module.model = with_input_size(module.model, image_size)
    return pack_module(module, out, Path(out).stem)


class PackModel(Callback):
    """Writes ``<run folder>/<filename>`` (the run folder is ``outputs/<name>``) when ``fit`` ends.

    The metadata records ``base_model`` (``init_from``), ``data_dir``, ``steps``, ``base_weight`` and
    ``val_metrics`` (the ``val/…`` values of the last validation, at step ``val_step``, of the
    weights as trained, before any blend).

    Args:
        filename: name of the model file inside the run folder.
        base_weight: the file holds ``(1 - base_weight) * trained + base_weight * init_from`` weights
            (``blend_with_base``; 0: the trained weights). The run's checkpoints keep the trained ones,
            so ``--ckpt_path`` resumes training from them.
        calibrate_limit: val rows the presence calibration is fitted on (0: no calibration).
    """

    def __init__(
        self,
        *,
        filename: str = "model.safetensors",
        base_weight: float = 0.0,
        calibrate_limit: int = DEFAULT_LIMIT,
    ) -> None:
        if not 0.0 <= base_weight <= 1.0:
            raise ValueError(f"PackModel base_weight {base_weight}: use a number in [0, 1]")
        self.filename = filename
        self.base_weight = base_weight
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
        base_model = pl_module.hparams.get("init_from")
        record = {
            "base_model": base_model,
            "base_weight": self.base_weight,
            "data_dir": getattr(trainer.datamodule, "data_dir", None),
            "steps": trainer.global_step,
            "val_metrics": self.val_metrics,
            "val_step": self.val_step,
        }
        trained = {k: v.clone() for k, v in pl_module.model.state_dict().items()}
        if self.base_weight > 0 and base_model is not None:
            blend_with_base(pl_module.model, base_model, self.base_weight)
        target = pack_module(
            pl_module,
            run_dir / self.filename,
            run_dir.name,
            {META_FINETUNE: json.dumps(record, sort_keys=True)},
        )
        pl_module.model.load_state_dict(trained)  # the module stays as trained, as its checkpoints
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
