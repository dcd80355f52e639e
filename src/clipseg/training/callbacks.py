"""Training callbacks: ``last.ckpt`` on a step schedule and on SIGTERM, sample overlays for wandb, a
progress bar in steps, and a wandb logger without Lightning's deprecated ``anonymous`` argument."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from PIL import Image

from clipseg.inference.overlay import overlay


class LastCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` every ``every_n_train_steps`` steps and when a SIGTERM stops training.

    A preempted job (SIGTERM) thus resumes exactly where it stopped with ``--ckpt_path last``; a
    ``kill -9`` loses at most ``every_n_train_steps`` steps. Lightning turns SIGTERM into a
    ``SIGTERMException`` raised after the running batch completes, so the saved state is consistent.

    Args:
        dirpath: folder of ``last.ckpt`` (the CLI fills in ``outputs/<name>/checkpoints``).
        every_n_train_steps: save period in optimizer steps.
    """

    def __init__(self, *, dirpath: str | None = None, every_n_train_steps: int = 1000) -> None:
        super().__init__(
            dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=every_n_train_steps
        )

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if (
            isinstance(exception, SIGTERMException)
            and not trainer.fast_dev_run
            and not trainer.sanity_checking
        ):
            path = os.path.join(str(self.dirpath), self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
            trainer.save_checkpoint(path)
            self.last_model_path = path


class StepProgressBar(TQDMProgressBar):
    """The training bar counts optimizer steps of ``max_steps`` (``step 1200/20000``), not epochs.

    Training streams are endless, so Lightning's epochs mean nothing here (its bar showed
    ``Epoch 14/-2``). Without ``max_steps`` this is Lightning's bar.
    """

    def on_train_epoch_start(self, trainer: Trainer, *args: Any) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        bar.total, bar.initial = trainer.max_steps, 0
        bar.set_description("step")
        self._show_step(trainer, force=True)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._show_step(trainer):
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def _show_step(self, trainer: Trainer, *, force: bool = False) -> bool:
        bar, step = self.train_progress_bar, trainer.global_step
        if bar.disable or not (force or self._should_update(step, bar.total)):
            return False
        bar.n = step
        bar.refresh()
        return True


class QuietWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` minus its ``anonymous=None``, which wandb now warns about on every run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


def _to_uint8(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``H x W x 3`` uint8 from a normalized ``3 x H x W`` tensor."""
    pixels = image.float().cpu() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (pixels.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def sample_panel(
    image: np.ndarray, prob: np.ndarray, target: np.ndarray, prompt: str, *, min_side: int = 256
) -> Image.Image:
    """Prediction overlay (labelled with the prompt) beside the target overlay, as one image.

    Small inputs are enlarged (nearest) to ``min_side`` so that the prompt legend stays readable.
    """
    scale = max(1, -(-min_side // image.shape[0]))
    image, prob, target = (a.repeat(scale, axis=0).repeat(scale, axis=1) for a in (image, prob, target))
    left = overlay(image, prob[None], [prompt or "(visual prompt)"])
    right = overlay(image, target[None], ["target"])
    panel = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), (255, 255, 255))
    panel.paste(left, (0, 0))
    panel.paste(right, (left.width, 0))
    return panel


class SampleOverlays(Callback):
    """Logs (image, prompt, prediction, target) overlays to wandb: of training batches every
    ``every_n_steps`` steps, and of the first batch of each validation.

    Only a ``WandbLogger`` receives them (``log_image``); with other loggers or none this does nothing.

    Args:
        every_n_steps: logging period in optimizer steps.
        max_samples: samples per logged batch.
    """

    def __init__(self, *, every_n_steps: int = 500, max_samples: int = 4) -> None:
        self.every_n_steps = every_n_steps
        self.max_samples = max_samples

    @staticmethod
    def _logger(trainer: Trainer) -> WandbLogger | None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
        return logger if trainer.is_global_zero else None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        logger = self._logger(trainer)
        if logger is None or trainer.global_step % self.every_n_steps:
            return
        if not isinstance(outputs, Mapping) or "probs" not in outputs:
            return
        self._log(logger, "train/samples", pl_module, batch, outputs["probs"], trainer.global_step)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        logger = self._logger(trainer)
        if logger is None or batch_idx != 0 or trainer.sanity_checking or "mask" not in batch:
            return
        with torch.no_grad():  # one extra forward pass per validation: the evaluators keep no probabilities
            _, probs, _ = pl_module.model_step(batch, auxiliary=False)
        self._log(logger, "val/samples", pl_module, batch, probs, trainer.global_step)

    def _log(
        self,
        logger: WandbLogger,
        key: str,
        pl_module: LightningModule,
        batch: Any,
        probs: torch.Tensor,
        step: int,
    ) -> None:
        """Log overlays of the first ``max_samples`` samples; ``probs`` ``B x H x W``."""
        config = pl_module.model.config
        count = min(self.max_samples, len(batch["text"]))
        panels = [
            sample_panel(
                _to_uint8(batch["image"][i], config.image_mean, config.image_std),
                probs[i].float().cpu().numpy(),
                batch["mask"][i, 0].float().cpu().numpy(),
                batch["text"][i],
            )
            for i in range(count)
        ]
        logger.log_image(key=key, images=panels, step=step, caption=batch["text"][:count])
