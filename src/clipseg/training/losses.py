"""Extra training losses for a model trained from scratch (the toy shapes-tiny); the paper's step is plain BCE.

A YAML names them under ``model.losses`` (see ``configs/shapes-tiny.yaml``)::

    losses:
      class_path: clipseg.training.losses.FromScratchLosses
      init_args: {dice_weight: 1.0, contrastive_weight: 1.0, dense_label_weight: 2.0, ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from clipseg.modeling.clipseg import ClipSeg
from clipseg.training.steps import Batch, StepOutputs, forward_step


def prompt_contrastive_loss(
    text: Tensor, visual: Tensor, phrases: Sequence[str], logit_scale: Tensor
) -> Tensor | None:
    """CLIP's symmetric contrastive loss between ``N`` support-image and ``N`` phrase embeddings (``N x D``).

    Samples with the same phrase are positives of each other (the target spreads evenly over them).
    ``logit_scale`` is CLIP's learned log temperature. ``None`` with fewer than two distinct phrases:
    there is nothing to tell apart.
    """
    if len(set(phrases)) < 2:
        return None
    logits = logit_scale.exp().clamp(max=100) * F.normalize(visual, dim=-1) @ F.normalize(text, dim=-1).T
    same = torch.tensor([[a == b for b in phrases] for a in phrases], device=logits.device)
    target = same.float() / same.sum(1, keepdim=True)  # symmetric, so it serves both directions
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def soft_dice_loss(logits: Tensor, target: Tensor, *, smooth: float = 1.0) -> Tensor:
    """Mean over the batch of ``1 - (2 |p ∩ y| + s) / (|p| + |y| + s)`` for ``B x H x W`` logits and targets.

    Unlike per-pixel BCE it weighs a sample by its mask as a whole, so small objects count as much as
    large ones and a half-sure prediction costs as much as a miss. With an empty target (a prompt naming
    something absent) it is ``|p| / (|p| + s)``: any marked pixel is penalised.
    """
    probs = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    overlap = (probs * target).sum(1)
    return (1 - (2 * overlap + smooth) / (probs.sum(1) + target.sum(1) + smooth)).mean()


def dense_label_loss(patch_logits: Tensor, label: Tensor, *, ignore_index: int = 255) -> Tensor | None:
    """Cross-entropy of per-patch class logits against the class shares of each patch's pixels.

    Args:
        patch_logits: ``B x h x w x K`` logits of the patch tokens.
        label: ``B x H x W`` class ids in ``[0, K)`` (``ignore_index`` = unlabelled), ``H, W`` multiples
            of ``h, w``; a patch's target is the share of each class among its labelled pixels, so
            patches on an object's edge are split between it and the background.

    Returns:
        the mean over patches with at least half of their pixels labelled; ``None`` if there are none.

    Raises:
        ValueError: a label is neither ``ignore_index`` nor in ``[0, K)``.
    """
    classes = patch_logits.shape[-1]
    valid = label != ignore_index
    outside = valid & ((label < 0) | (label >= classes))
    if outside.any():
        bad = label[outside].unique().tolist()
        raise ValueError(
            f"label ids {bad[:5]} are outside [0, {classes}) (and not ignore_index {ignore_index})"
        )
    onehot = F.one_hot(torch.where(valid, label, 0), classes).float() * valid[..., None]
    shares = F.adaptive_avg_pool2d(onehot.permute(0, 3, 1, 2), patch_logits.shape[1:3])  # B x K x h x w
    labelled = shares.sum(1)
    keep = labelled >= 0.5
    if not keep.any():
        return None
    target = (shares / labelled.clamp_min(1e-6)[:, None]).permute(0, 2, 3, 1)
    return -(target * F.log_softmax(patch_logits.float(), dim=-1)).sum(-1)[keep].mean()


class FromScratchLosses(nn.Module):
    """Terms added to the BCE in training, for a backbone trained from scratch on a small world.

    Validation and test losses stay plain BCE, comparable across models; prediction adds nothing.

    Args:
        dice_weight: this times ``soft_dice_loss`` (small objects count as much as large ones).
        contrastive_weight: this times ``prompt_contrastive_loss`` over the samples that carry both a
            text and a support image (paired by ``batch["phrase"]``, the prompt before templating).
            The segmentation loss alone lets such a model solve most prompts by color and never learn
            what the shape words mean; telling "red circle" from "red square" in the support images
            forces both towers to encode shape.
        dense_label_weight: this times ``dense_label_loss`` of the deepest extracted patch tokens
            against ``batch["label"]``, through a training-only head ``C -> K`` (not in packed
            models): the vision tower otherwise encodes each patch's color but not its shape.
        dense_label_classes: ``K``, the number of label classes (needed with ``dense_label_weight``).
        identity_film: start FiLM as the identity (``ClipSegDecoder.reset_film_to_identity``). With a
            random text tower, default-initialised FiLM multiplies the decoder state by random
            per-prompt noise; the model then learns to ignore the prompt.
    """

    def __init__(
        self,
        *,
        dice_weight: float = 0.0,
        contrastive_weight: float = 0.0,
        dense_label_weight: float = 0.0,
        dense_label_classes: int = 0,
        identity_film: bool = False,
    ) -> None:
        super().__init__()
        if dense_label_weight and dense_label_classes < 2:
            raise ValueError(f"dense_label_weight needs dense_label_classes >= 2, got {dense_label_classes}")
        self.dice_weight, self.contrastive_weight = dice_weight, contrastive_weight
        self.dense_label_weight, self.dense_label_classes = dense_label_weight, dense_label_classes
        self.identity_film = identity_film
        self.dense_head: nn.Module | None = None

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments, as plain values (for checkpoint hyperparameters)."""
        return {
            "dice_weight": self.dice_weight,
            "contrastive_weight": self.contrastive_weight,
            "dense_label_weight": self.dense_label_weight,
            "dense_label_classes": self.dense_label_classes,
            "identity_film": self.identity_film,
        }

    def attach(self, model: ClipSeg) -> None:
        """Prepare a fresh ``model`` (identity FiLM) and build the dense head for its width.

        Raises:
            ValueError: ``dense_label_weight`` with a frozen backbone (it trains the vision tower).
        """
        if self.identity_film:  # checkpoints restored later overwrite this; it only shapes a fresh start
            model.decoder.reset_film_to_identity()
        if self.dense_label_weight:
            if model.config.freeze_backbone:
                raise ValueError(
                    "dense_label_weight trains the vision tower; it has no use with freeze_backbone"
                )
            hidden = model.backbone.hidden_size
            self.dense_head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, self.dense_label_classes))

    def forward(self, model: ClipSeg, batch: Batch, out: StepOutputs) -> Tensor:
        """The weighted sum of the extra terms for one training batch (0 when none applies)."""
        loss = out.logits.new_zeros((), dtype=torch.float32)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(out.logits, out.target)
        if self.contrastive_weight:
            pairs = ((out.weight > 0) & (out.weight < 1)).nonzero().flatten().tolist()  # both towers encoded
            phrases = [batch["phrase"][i] for i in pairs]
            logit_scale = model.backbone.clip.logit_scale
            contrastive = prompt_contrastive_loss(out.text[pairs], out.visual[pairs], phrases, logit_scale)
            if contrastive is not None:
                loss = loss + self.contrastive_weight * contrastive
        if self.dense_label_weight:
            if self.dense_head is None or "label" not in batch:
                raise ValueError("dense_label_weight needs batches with a `label` map (and attach() first)")
            image = batch["image"]
            grid = (image.shape[2] // model.patch_size, image.shape[3] // model.patch_size)
            patches = out.activations[-1][:, 1:].unflatten(1, grid)  # B x h x w x C, the CLS token dropped
            dense = dense_label_loss(self.dense_head(patches), batch["label"].to(out.logits.device))
            if dense is not None:
                loss = loss + self.dense_label_weight * dense
        return loss


def distillation_loss(logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean per-pixel binary KL divergence from the teacher's probabilities to the student's.

    ``logits`` and ``teacher_logits`` are ``N x H x W``. It is the BCE of the student's logits against
    the teacher's sigmoid probabilities (soft targets; Hinton et al. 2015, Li & Hoiem 2016) minus the
    targets' own entropy: the same gradient, but 0 when the student matches the teacher, so the logged
    value reads as how far the student has drifted.
    """
    soft = torch.sigmoid(teacher_logits.float())
    bce = F.binary_cross_entropy_with_logits(logits.float(), soft)
    entropy = F.binary_cross_entropy_with_logits(teacher_logits.float(), soft)
    return bce - entropy


def select_samples(batch: Batch, keep: Tensor) -> dict[str, Any]:
    """The samples of ``batch`` where the ``B`` bools ``keep`` are True (tensors and per-sample lists)."""
    rows = keep.tolist()
    picked: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, Tensor):
            picked[key] = value[keep.to(value.device)]
        else:
            picked[key] = [v for v, k in zip(value, rows) if k]
    return picked


def plain_distillation(
    teacher: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch, logits: Tensor
) -> Tensor | None:
    """``distillation_loss`` of the student's ``logits`` ``B x H x W`` against ``teacher``'s, on plain scenes.

    Plain scenes are those ``batch["varied"]`` flags False (the shapes world's original look); a batch
    without the flag counts every sample (Learning without Forgetting's form). The teacher sees the
    same images and prompts, without gradients. ``None`` when no sample counts.
    """
    keep = ~batch["varied"].bool() if "varied" in batch else torch.ones(len(logits), dtype=torch.bool)
    keep = keep.to(logits.device)
    if not keep.any():
        return None
    plain = select_samples(batch, keep)
    with torch.no_grad():
        teacher_logits = forward_step(teacher.to(logits.device), tokenizer, plain).logits
    return distillation_loss(logits[keep], teacher_logits)
