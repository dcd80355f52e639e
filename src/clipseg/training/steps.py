"""What training and every evaluation protocol share: prompts → conditionals → logits → loss.

Plain functions of ``(model, tokenizer, batch)`` so that ``ClipSegModule`` and ``make eval-all`` (which
runs zoo models outside Lightning) compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from clipseg.core.prompts import mix_conditionals, text_weights, tokenize_prompts
from clipseg.modeling.clipseg import ClipSeg

Batch = Mapping[str, Any]


def text_conditionals(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> Tensor:
    """``N x D`` embeddings of ``N`` text prompts, on the model's device."""
    device = next(model.parameters()).device
    encoded = tokenize_prompts(
        tokenizer, list(prompts), max_length=model.max_text_tokens, return_tensors="pt"
    )
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
    has_text = [bool(t.strip()) for t in batch["text"]]
    valid = batch["support_valid"].bool().tolist()
    try:
        weight = text_weights(has_text, valid, batch["text_weight"].float().tolist())
    except ValueError:
        ids = [sid for sid, t, v in zip(batch["sample_id"], has_text, valid) if not (t or v)]
        raise ValueError(f"samples without a text or a visual prompt: {ids[:5]}") from None
    weight = torch.from_numpy(weight).to(image.device)
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


@dataclass(frozen=True)
class StepOutputs:
    """What one forward pass of a batch computes, for the loss and for extra training losses.

    ``text`` / ``visual`` ``B x D`` and ``weight`` ``B`` as ``prompt_embeddings``; ``activations`` the
    backbone's (``B x (1 + h * w) x C`` each); ``logits`` and ``target`` ``B x H x W``.
    """

    text: Tensor
    visual: Tensor
    weight: Tensor
    activations: list[Tensor]
    logits: Tensor
    target: Tensor


def forward_step(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch) -> StepOutputs:
    """Segment each image with its own prompt (``w * text + (1 - w) * visual``)."""
    text, visual, weight = prompt_embeddings(model, tokenizer, batch)
    conditionals = mix_conditionals(text, visual, weight)[:, None]  # B x 1 x D: the diagonal only
    image = batch["image"]
    activations = model.backbone(image)
    logits = model.decode(activations, conditionals, out_size=image.shape[2:])[:, 0]
    target = batch["mask"][:, 0].to(logits.device)
    return StepOutputs(text, visual, weight, activations, logits, target)


def model_step(
    model: ClipSeg, tokenizer: PreTrainedTokenizerBase, batch: Batch
) -> tuple[Tensor, Tensor, Tensor]:
    """Segment each image with its own prompt and score it against its mask (paper Sec. 3).

    Returns:
        ``loss`` (mean binary cross-entropy with logits), ``probs`` ``B x H x W`` (detached) and
        ``target`` ``B x H x W`` (the mask, binary or an alpha matte).
    """
    out = forward_step(model, tokenizer, batch)
    return bce_loss(out), torch.sigmoid(out.logits.detach().float()), out.target


def bce_loss(out: StepOutputs) -> Tensor:
    """The paper's loss: mean binary cross-entropy of the logits against the mask."""
    return F.binary_cross_entropy_with_logits(out.logits.float(), out.target.float())
