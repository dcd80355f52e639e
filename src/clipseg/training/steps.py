"""What training and every evaluation protocol share: prompts → conditionals → logits → loss.

Plain functions of ``(model, tokenizer, batch)`` so that ``ClipSegModule`` and ``make eval-all`` (which
runs zoo models outside Lightning) compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from clipseg.modeling.clipseg import ClipSeg
from clipseg.prompts import mix_conditionals, tokenize_prompts

Batch = Mapping[str, Any]


def text_conditionals(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> Tensor:
    """``N x D`` embeddings of ``N`` text prompts, on the model's device."""
    device = next(model.parameters()).device
    encoded = tokenize_prompts(tokenizer, list(prompts))
    return model.encode_text(**{k: v.to(device) for k, v in encoded.items()})


def batch_conditionals(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> Tensor:
    """``B x D`` prompt of each sample: ``w * text + (1 - w) * visual`` with ``w = batch["text_weight"]``.

    ``w`` is taken as 1 where ``support_valid`` is False and as 0 where the text is empty (purely visual
    protocols); each tower only encodes the samples whose weight needs it.

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
    return mix_conditionals(text, visual, weight)


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


def model_step(
    model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch, *, dice_weight: float = 0.0
) -> tuple[Tensor, Tensor, Tensor]:
    """Segment each image with its own prompt and score it against its mask.

    Returns:
        ``loss`` (mean binary cross-entropy with logits, plus ``dice_weight`` times ``soft_dice_loss``),
        ``probs`` ``B x H x W`` (detached) and ``target`` ``B x H x W`` (the mask, binary or an alpha matte).
    """
    conditionals = batch_conditionals(model, tokenizer, batch)[:, None]  # B x 1 x D: the diagonal only
    logits = model(batch["image"], conditionals)[:, 0]
    target = batch["mask"][:, 0].to(logits.device)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    if dice_weight:
        loss = loss + dice_weight * soft_dice_loss(logits, target)
    return loss, torch.sigmoid(logits.detach().float()), target
