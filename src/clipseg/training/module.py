"""``ClipSegModule``: the thin LightningModule around ``ClipSeg`` that LightningCLI configures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning import LightningModule
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from clipseg.core.config import ClipSegConfig
from clipseg.metrics import ReferringSegMetrics
from clipseg.modeling.clipseg import ClipSeg, load_state
from clipseg.modeling.input_size import fit_position_embedding
from clipseg.training.evaluation import make_evaluator
from clipseg.training.losses import FromScratchLosses, plain_distillation
from clipseg.training.model_setup import build_model, load_for_run, load_teacher
from clipseg.training.steps import Batch, bce_loss, forward_step
from clipseg.zoo import load_weights

BACKBONE_PREFIX = "model.backbone."
Protocol = Literal["referring", "fewshot", "zeroshot", "matting"]


class ClipSegModule(LightningModule):
    """Trains a ``ClipSeg`` with binary cross-entropy on (image, prompt, mask) batches (paper Sec. 3).

    Prompts are mixed in the step: each sample's conditional is ``w * text + (1 - w) * visual`` (see
    ``steps.batch_conditionals``). Validation and test follow ``evaluation`` (see ``evaluation.PROTOCOLS``);
    training always reports the referring metrics. Metrics are logged as ``train/…``, ``val/…``, ``test/…``.

    A frozen backbone loaded by name is left out of checkpoints (it is reloaded from the name): they
    hold the decoder, optimizer and loop state only.

    Args:
        config: the model architecture; ``config.backbone`` is a hub name, a local folder or a
            ``CLIPConfig`` dict (random init, whose text vocabulary is sized to the tokenizer).
            ``None`` with ``init_from``: the architecture, tokenizer, input size and normalization
            are that model's (``configs/finetune.yaml``), and so is ``freeze_backbone``: a pretrained,
            named backbone stays frozen, one trained by this project (shapes-tiny) trains end to end.
        tokenizer: hub name or folder of the CLIP tokenizer (default: the backbone's).
        tokenizer_corpus: build a CLIP-format tokenizer with one token per word of these texts instead.
        evaluation: protocol of validation and test.
        lr: AdamW learning rate at step 0, annealed with a cosine to ``min_lr`` at ``trainer.max_steps``.
        min_lr: learning rate at the last step.
        schedule_steps: the cosine's length when it is not ``trainer.max_steps``: a run stopped before
            the end of its schedule (configs/shapes-tiny-v2.yaml) is reproduced with both set.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up from 0 to ``lr`` first (0 = none). A randomly initialised text
            tower needs it: at full ``lr`` from step 0 its prompt embeddings collapse to one vector and
            the model learns prompt-blind saliency.
        losses: extra training terms (``losses.FromScratchLosses``: Dice, contrastive, per-patch
            labels, identity FiLM) for a backbone trained from scratch (Dice alone in ``configs/finetune.yaml``);
            none for the paper's BCE.
        init_from: zoo name or model file (see ``clipseg.load_model``) whose weights start this run,
            to fine-tune it; its architecture and tokenizer must be this run's, its input size may differ
            (the position embedding is resampled), or leave ``config`` and ``tokenizer`` unset to take
            both from it. Optimizer and schedule start fresh
            (``--ckpt_path`` resumes a run instead).
        distill_from: zoo name or model file of a teacher (usually the model ``init_from`` starts
            from): training adds ``distill_weight`` times the per-pixel KL divergence from its mask
            probabilities to the student's on the plain scenes of each batch (``losses.plain_distillation``),
            so that training on a varied world does not forget the original one (Learning without
            Forgetting). The teacher is frozen, outside the optimizer and the checkpoints (reloaded
            from the name on resume); logged as ``train/distill``.
        distill_weight: the weight of that term.
    """

    def __init__(
        self,
        *,
        config: ClipSegConfig | None = None,
        tokenizer: str | None = None,
        tokenizer_corpus: Sequence[str] | None = None,
        evaluation: Protocol = "referring",
        lr: float = 1e-3,
        min_lr: float = 1e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        losses: FromScratchLosses | None = None,
        init_from: str | None = None,
        schedule_steps: int | None = None,
        distill_from: str | None = None,
        distill_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(config, dict):  # `load_from_checkpoint` outside LightningCLI passes the stored dict
            config = ClipSegConfig.from_dict(config)
        self.save_hyperparameters()
        if config is None:
            if init_from is None:
                raise ValueError(
                    "set model.config (an architecture) or model.init_from (a zoo name or model file to fine-tune)"
                )
            if tokenizer is not None or tokenizer_corpus is not None:
                raise ValueError("with init_from and no config, the tokenizer is init_from's: leave it unset")
            self.model, self.tokenizer = load_weights(init_from)
        else:
            self.model, self.tokenizer = build_model(
                config, tokenizer=tokenizer, tokenizer_corpus=tokenizer_corpus
            )
        # Plain types only, so that checkpoints load with `torch.load(weights_only=True)`.
        self.hparams["config"] = self.model.config.to_dict()
        if isinstance(losses, dict):  # as stored in checkpoints
            losses = FromScratchLosses(**losses)
        self.hparams["losses"] = losses.init_args() if losses is not None else None
        self.losses = losses
        if losses is not None:
            losses.attach(self.model)
        # A checkpoint restored later (resume, reload) overwrites these weights, as it should.
        if init_from is not None and config is not None:
            load_weights_from(self.model, self.tokenizer, init_from)
        self.evaluation = evaluation
        self.lr, self.min_lr, self.weight_decay, self.warmup_steps = lr, min_lr, weight_decay, warmup_steps
        self.schedule_steps = schedule_steps
        # In a tuple, so that it is no submodule: not in state_dict, parameters(), EMA or train() switches.
        self.teacher = () if distill_from is None else (load_teacher(distill_from, self.tokenizer),)
        self.distill_weight = distill_weight
        self.train_metrics = ReferringSegMetrics()
        self.evaluators = nn.ModuleDict()  # "val" / "test" → Evaluator, built in `setup`

    def setup(self, stage: str) -> None:
        # Evaluators read class lists from the datamodule, which is known only now.
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "use_model_preprocessing"):
            # Trained on the pixels it will be served: the model's filter, mean and std (its file records them).
            datamodule.use_model_preprocessing(self.model.config.preprocessing)
        for split in ("val", "test"):
            if split not in self.evaluators:
                self.evaluators[split] = make_evaluator(self.evaluation, datamodule)

    # ----------------------------------------------------------------------------------- steps

    def model_step(self, batch: Batch, *, auxiliary: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """``loss``, ``probs`` ``B x H x W`` and ``target`` ``B x H x W`` of a batch (see ``steps.model_step``).

        The loss is BCE plus ``losses``' terms and the distillation term; ``auxiliary=False`` leaves those out
        (prediction needs none).
        """
        out = forward_step(self.model, self.tokenizer, batch)
        loss = bce_loss(out)
        if auxiliary and self.losses is not None:
            loss = loss + self.losses(self.model, batch, out)
        if auxiliary and self.teacher:
            distill = plain_distillation(self.teacher[0], self.tokenizer, batch, out.logits)
            if distill is not None:
                if self._trainer is not None:  # model_step also serves outside a Trainer (tests, tools)
                    self.log("train/distill", distill, batch_size=len(out.logits))
                loss = loss + self.distill_weight * distill
        return loss, torch.sigmoid(out.logits.detach().float()), out.target

    def training_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        loss, probs, target = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(probs))
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0], batch_size=len(probs))
        self.train_metrics.update(probs, target >= 0.5)
        # The training stream is endless, so metrics cover the last `log_every_n_steps` steps, not an epoch.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._log_metrics("train", self.train_metrics.compute())
            self.train_metrics.reset()
        return {"loss": loss, "probs": probs}

    def _eval_step(self, split: str, batch: Batch) -> dict[str, Tensor]:
        loss = self.evaluators[split].step(self.model, self.tokenizer, batch)
        if loss is None:
            return {}
        self.log(f"{split}/loss", loss, sync_dist=True, batch_size=len(batch["image"]))
        return {"loss": loss}

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step("test", batch)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        """``probs`` ``B x H x W`` of each image for its own prompt, with the batch's ``sample_id``."""
        _, probs, _ = self.model_step(batch, auxiliary=False)
        return {"sample_id": batch["sample_id"], "probs": probs}

    def on_validation_epoch_end(self) -> None:
        self._end_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._end_evaluation("test")

    def _end_evaluation(self, split: str) -> None:
        evaluator = self.evaluators[split]
        self._log_metrics(split, evaluator.compute())
        evaluator.reset()

    def _log_metrics(self, split: str, values: dict[str, Tensor]) -> None:
        # Already reduced over ranks by torchmetrics: no second sync.
        self.log_dict({f"{split}/{k}": v for k, v in values.items()}, sync_dist=False)

    # ----------------------------------------------------------------------------------- optimization

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW over the trainable parameters; optional linear warm-up, then cosine from ``lr`` to ``min_lr`` at
        ``schedule_steps`` (default ``max_steps``)."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        steps = self.schedule_steps or (
            self.trainer.max_steps if self.trainer.max_steps > 0 else self.trainer.estimated_stepping_batches
        )
        warmup = max(0, min(self.warmup_steps, int(steps) - 1))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=int(steps) - warmup, eta_min=self.min_lr
        )
        if warmup:
            ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup)
            scheduler = torch.optim.lr_scheduler.SequentialLR(
                optimizer, [ramp, scheduler], milestones=[warmup]
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------------------------- checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.model.decoder_only:
            # The frozen backbone is reloaded from its name; storing it would add ~600 MB per checkpoint.
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(BACKBONE_PREFIX)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.model.decoder_only:
            state = checkpoint["state_dict"]
            for key, value in self.state_dict().items():
                if key.startswith(BACKBONE_PREFIX):
                    state.setdefault(key, value)


def load_weights_from(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, name_or_path: str) -> None:
    """Copy the weights of the zoo model or model file ``name_or_path`` into ``model``.

    A file made for another input size starts a run at ``model``'s: its vision position embedding is
    resampled to ``model``'s patch grid (``input_size.fit_position_embedding``, logged).

    Raises:
        ValueError: its tokenizer differs from ``tokenizer``; ``CheckpointError`` (a ``ValueError``)
            lists the parameters whose names or shapes differ from ``model``'s.
    """
    source = load_for_run(name_or_path, tokenizer, option="init_from")
    where = f"{name_or_path!r} (init_from)"
    load_state(model, fit_position_embedding(source.state_dict(), model, source=where), source=where)
