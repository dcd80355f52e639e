"""Evaluation protocols of the paper, one small ``Evaluator`` per benchmark family, chosen by name.

An evaluator owns its torchmetrics object (so it moves to the model's device and syncs under DDP)
and knows how to turn a batch into that metric's inputs:

- ``referring`` (PhraseCut, shapes): each image with its own prompt → ``ReferringSegMetrics``;
- ``fewshot`` (PASCAL-5i, COCO-20i one-shot): support image as the visual prompt → ``FewShotMetrics``;
- ``zeroshot`` (PASCAL zero-shot): one text prompt per class, arg-max over classes → ``ZeroShotMetrics``;
- ``matting`` (RefMatte): the probability map is the predicted alpha → ``MattingErrors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from transformers import PreTrainedTokenizerBase

from clipseg.core.prompts import apply_template
from clipseg.metrics import FewShotMetrics, MattingErrors, ReferringSegMetrics, ZeroShotMetrics
from clipseg.modeling.clipseg import ClipSeg
from clipseg.training.steps import Batch, model_step, text_conditionals

# The original zero-shot evaluation (CLIPSegMultiLabel) triples the background probability before the arg-max.
BACKGROUND_FACTOR = 3.0


class Evaluator(nn.Module):
    """Feeds batches of one protocol into ``metric``; ``step`` returns the loss where the protocol has one."""

    def __init__(self, metric: Metric) -> None:
        super().__init__()
        self.metric = metric

    def step(self, model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor | None:
        loss, probs, target = model_step(model, tokenizer, batch)
        self.metric.update(probs, target >= 0.5)
        return loss

    def compute(self) -> dict[str, Tensor]:
        """The metric over everything seen since the last ``reset`` (synced across DDP ranks)."""
        return dict(self.metric.compute())

    def reset(self) -> None:
        self.metric.reset()


class FewShotEvaluator(Evaluator):
    """One-shot episodes: per-class IoU. The datamodule sets ``text_weight`` (0: the support image alone)."""

    def step(self, model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor | None:
        loss, probs, target = model_step(model, tokenizer, batch)
        self.metric.update(probs, target >= 0.5, batch["class_id"])
        return loss


class MattingEvaluator(Evaluator):
    """Referring matting: the foreground probability is the predicted alpha matte."""

    def step(self, model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor | None:
        loss, probs, target = model_step(model, tokenizer, batch)
        self.metric.update(probs, target.clamp(0, 1))
        return loss


class ZeroShotEvaluator(Evaluator):
    """Semantic segmentation by arg-max over one text prompt per class (``class_names[i]`` has label ``i``)."""

    def __init__(self, metric: Metric, class_names: Sequence[str]) -> None:
        super().__init__(metric)
        self.prompts = [apply_template(name) for name in class_names]
        factors = torch.tensor([BACKGROUND_FACTOR if n == "background" else 1.0 for n in class_names])
        self.register_buffer("factors", factors[:, None, None], persistent=False)

    def step(self, model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor | None:
        conditionals = text_conditionals(model, tokenizer, self.prompts)  # C x D, shared by all images
        probs = torch.sigmoid(model(batch["image"], conditionals).float())  # B x C x H x W
        self.metric.update((probs * self.factors).argmax(dim=1), batch["label"])
        return None


def _required(datamodule: Any, name: str, protocol: str) -> Any:
    if not hasattr(datamodule, name):
        raise ValueError(
            f"the {protocol} protocol needs `{name}` from the datamodule {type(datamodule).__name__}"
        )
    return getattr(datamodule, name)


def _fewshot(dm: Any) -> Evaluator:
    return FewShotEvaluator(FewShotMetrics(num_classes=_required(dm, "num_classes", "fewshot")))


def _zeroshot(dm: Any) -> Evaluator:
    names = _required(dm, "class_names", "zeroshot")
    metric = ZeroShotMetrics(
        num_classes=len(names),
        seen=_required(dm, "seen_class_ids", "zeroshot"),
        unseen=_required(dm, "unseen_class_ids", "zeroshot"),
    )
    return ZeroShotEvaluator(metric, names)


PROTOCOLS: dict[str, Callable[[Any], Evaluator]] = {
    "referring": lambda dm: Evaluator(ReferringSegMetrics()),
    "fewshot": _fewshot,
    "zeroshot": _zeroshot,
    "matting": lambda dm: MattingEvaluator(MattingErrors()),
}


def make_evaluator(protocol: str, datamodule: Any) -> Evaluator:
    """The evaluator of ``protocol`` (a key of ``PROTOCOLS``), reading class lists from ``datamodule``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol](datamodule)
