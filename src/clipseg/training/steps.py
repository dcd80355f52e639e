"""What training and every evaluation protocol share: prompts → conditionals → logits → loss.

Plain functions of ``(model, tokenizer, batch)`` so that ``ClipSegModule`` and ``make eval-all`` (which
runs zoo models outside Lightning) compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from clipseg.modeling.clipseg import ClipSeg
from clipseg.prompts import mix_conditionals, tokenize_prompts

Batch = Mapping[str, Any]


def text_conditionals(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> Tensor:
    """``N x D`` embeddings of ``N`` text prompts, on the model's device."""
    device = next(model.parameters()).device
    encoded = tokenize_prompts(tokenizer, list(prompts), max_length=model.max_text_tokens)
    return model.encode_text(**{k: v.to(device) for k, v in encoded.items()})


def prompt_embeddings(
    model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch
) -> tuple[Tensor, Tensor, Tensor]:
    """Text and visual prompt embeddings ``B x D`` of each sample and its text weight ``w`` (``B``).

    ``w`` is ``batch["text_weight"]``, taken as 1 where ``support_valid`` is False and as 0 where the
    text is empty (purely visual protocols); each tower only encodes the samples whose weight needs it
    (the other rows stay zero).

    Raises:
        ValueError: a sample has neither a text nor a valid support image.
    """
    image = batch["image"]
    has_text = torch.tensor([bool(t.strip()) for t in batch["text"]], device=image.device)
    valid = batch["support_valid"].to(image.device).bool()
    weight = torch.where(valid, batch["text_weight"].to(image.device, torch.float32), 1.0)
    weight = torch.where(has_text, weight, 0.0)
    empty = ~has_text & ~valid
    if empty.any():
        ids = [sid for sid, e in zip(batch["sample_id"], empty.tolist()) if e]
        raise ValueError(f"samples without a text or a visual prompt: {ids[:5]}")
    text = image.new_zeros(len(weight), model.prompt_dim, dtype=torch.float32)
    visual = torch.zeros_like(text)
    if (use_text := weight > 0).any():
        prompts = [t for t, use in zip(batch["text"], use_text.tolist()) if use]
        text[use_text] = text_conditionals(model, tokenizer, prompts).float()
    if (use_visual := weight < 1).any():
        visual[use_visual] = model.encode_visual_prompt(batch["support"][use_visual]).float()
    return text, visual, weight


def batch_conditionals(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor:
    """``B x D`` prompt of each sample: ``w * text + (1 - w) * visual`` (see ``prompt_embeddings``)."""
    return mix_conditionals(*prompt_embeddings(model, tokenizer, batch))


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


def model_step(
    model: ClipSeg,
    tokenizer: PreTrainedTokenizerBase,
    batch: Batch,
    *,
    dice_weight: float = 0.0,
    contrastive_weight: float = 0.0,
    dense_head: nn.Module | None = None,
    dense_label_weight: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Segment each image with its own prompt and score it against its mask.

    ``contrastive_weight`` adds that times ``prompt_contrastive_loss`` over the samples that carry both a
    text and a support image (paired by ``batch["phrase"]``, the prompt before templating). It is for a
    backbone trained from scratch: the segmentation loss alone lets such a model solve most prompts by
    color and never learn what the shape words mean, while telling "red circle" from "red square" in
    the support images forces both towers to encode shape.

    ``dense_head`` (``C -> K``) maps the patch tokens of the deepest extracted layer to class logits;
    ``dense_label_weight`` adds that times ``dense_label_loss`` against ``batch["label"]``. Its purpose is
    the same one on the image side: the vision tower of such a model otherwise encodes each patch's
    color but not the shape it belongs to.

    Returns:
        ``loss`` (mean binary cross-entropy with logits, plus the weighted Dice and contrastive terms),
        ``probs`` ``B x H x W`` (detached) and ``target`` ``B x H x W`` (the mask, binary or an alpha matte).
    """
    text, visual, weight = prompt_embeddings(model, tokenizer, batch)
    conditionals = mix_conditionals(text, visual, weight)[:, None]  # B x 1 x D: the diagonal only
    image = batch["image"]
    activations = model.backbone(image)
    logits = model.decode(activations, conditionals, out_size=image.shape[2:])[:, 0]
    target = batch["mask"][:, 0].to(logits.device)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    if dice_weight:
        loss = loss + dice_weight * soft_dice_loss(logits, target)
    if contrastive_weight:
        pairs = ((weight > 0) & (weight < 1)).nonzero().flatten().tolist()  # both towers encoded these
        phrases = [batch["phrase"][i] for i in pairs]
        logit_scale = model.backbone.clip.logit_scale
        contrastive = prompt_contrastive_loss(text[pairs], visual[pairs], phrases, logit_scale)
        if contrastive is not None:
            loss = loss + contrastive_weight * contrastive
    if dense_label_weight:
        if dense_head is None or "label" not in batch:
            raise ValueError("dense_label_weight needs a dense_head and batches with a `label` map")
        grid = (image.shape[2] // model.patch_size, image.shape[3] // model.patch_size)
        patches = activations[-1][:, 1:].unflatten(1, grid)  # B x h x w x C, the CLS token dropped
        dense = dense_label_loss(dense_head(patches), batch["label"].to(logits.device))
        if dense is not None:
            loss = loss + dense_label_weight * dense
    return loss, torch.sigmoid(logits.detach().float()), target
