"""Prompt engineering: the paper's text templates, visual prompts from image + mask, and mixing."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# "shuffle+" of the paper: the fixed template first, then the eight others sampled during training.
TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photograph of a {}.",
    "an image of a {}.",
    "{}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "a photo of one {}.",
    "a bad photo of a {}.",
    "a photo of the {}.",
)


def apply_template(phrase: str, template: str = TEMPLATES[0]) -> str:
    """Put ``phrase`` into ``template`` (e.g. "a photo of a {}.")."""
    if not phrase.strip():
        raise ValueError("empty prompt: a phrase must contain at least one non-space character")
    return template.format(phrase)


def sample_template(
    phrase: str, rng: random.Random | None = None, templates: Sequence[str] = TEMPLATES
) -> str:
    """Put ``phrase`` into a template drawn uniformly from ``templates`` (training-time augmentation)."""
    return apply_template(phrase, (rng or random).choice(list(templates)))


def tokenize_prompts(
    tokenizer, prompts: Sequence[str], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenize ``prompts`` padded to the longest, cut to ``max_length`` tokens with one warning.

    ``max_length`` is the text tower's number of positions (``ClipSeg.max_text_tokens``); the
    tokenizer's own ``model_max_length`` caps it too. Returns ``input_ids`` and ``attention_mask``,
    both ``N x L``.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if len(prompts) == 0:
        raise ValueError("empty prompt list: pass at least one prompt")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt {i} is empty ({prompt!r}); every prompt needs some text")
    limit = min(n for n in (max_length, tokenizer.model_max_length) if n)
    # Counting with truncation one past the limit keeps the tokenizer from warning about its own limit.
    counted = tokenizer(list(prompts), truncation=True, max_length=limit + 1).input_ids
    too_long = [p for p, ids in zip(prompts, counted) if len(ids) > limit]
    if too_long:
        warnings.warn(
            f"{len(too_long)} prompt(s) are longer than the model's {limit} text positions (start and "
            f"end tokens included) and were cut to fit, e.g. {too_long[0][:60]!r}",
            stacklevel=2,
        )
    enc = tokenizer(list(prompts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@dataclass(frozen=True)
class VisualPromptStyle:
    """How a support image + mask becomes a visual prompt (paper Sec. 4.3, Table 6).

    The default is the paper's best combination: blur the background (σ = 3 px at the output size),
    darken it to 10 %, and crop around the object with 10 % context on each side.
    """

    blur_sigma: float = 3.0
    background_factor: float = 0.1
    crop_context: float | None = 0.1
    highlight: bool = False


def visual_prompt(
    image: np.ndarray, mask: np.ndarray, size: int, style: VisualPromptStyle = VisualPromptStyle()
) -> np.ndarray:
    """Turn ``image`` (``H x W x 3`` uint8) and ``mask`` (``H x W``, in [0, 1]) into a ``size x size x 3`` uint8 prompt.

    An empty mask gives the unmodified (resized) image: there is no object to focus on.
    """
    from PIL import Image

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"visual_prompt expects an H x W x 3 image, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    img = image.astype(np.float32)
    m = np.clip(mask.astype(np.float32), 0.0, 1.0)
    if m.max() > 0 and style.crop_context is not None:
        ys, xs = np.nonzero(m > 0.5) if (m > 0.5).any() else np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = max(y1 - y0, x1 - x0) * (1 + 2 * style.crop_context)
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        top, left = round(cy - side / 2), round(cx - side / 2)
        bottom, right = round(cy + side / 2), round(cx + side / 2)
        pad = max(0, -top, -left, bottom - img.shape[0], right - img.shape[1])
        if pad:
            img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
            m = np.pad(m, pad)
        img = img[top + pad : bottom + pad, left + pad : right + pad]
        m = m[top + pad : bottom + pad, left + pad : right + pad]
    img = np.asarray(Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BICUBIC))
    m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)) / 255.0
    img = img.astype(np.float32)
    if m.max() == 0:
        return img.astype(np.uint8)
    background = img
    if style.blur_sigma > 0:
        # cv2 is ~4x faster than scipy here and this runs once per training sample.
        background = cv2.GaussianBlur(
            img, ksize=(0, 0), sigmaX=style.blur_sigma, borderType=cv2.BORDER_REFLECT
        )
    background = background * style.background_factor
    out = m[..., None] * img + (1 - m[..., None]) * background
    if style.highlight:
        out = out * (0.85 + 0.15 * m[..., None])
    return out.clip(0, 255).astype(np.uint8)


def mix_conditionals(
    text: torch.Tensor, visual: torch.Tensor, text_weight: torch.Tensor | float
) -> torch.Tensor:
    """Interpolate prompt embeddings: ``w * text + (1 - w) * visual`` (``N x D`` each, ``w`` scalar or ``N``)."""
    if text.shape != visual.shape:
        raise ValueError(
            f"text {tuple(text.shape)} and visual {tuple(visual.shape)} embeddings differ in shape"
        )
    w = torch.as_tensor(text_weight, dtype=text.dtype, device=text.device)
    if w.ndim == 1:
        w = w[:, None]
    return w * text + (1 - w) * visual
