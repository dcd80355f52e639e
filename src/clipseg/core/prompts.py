"""Prompts: ``Prompt``, the paper's text templates, visual prompts from image + mask, and mixing."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image

from clipseg.core.images import ImageLike

Array = TypeVar("Array")  # numpy arrays or torch tensors: mixing is the same formula for both


@dataclass(frozen=True)
class Prompt:
    """One prompt: text, a support image (optionally with the object's mask), or both mixed.

    With both, the conditional is ``weight * text + (1 - weight) * visual`` (paper Sec. 3).
    ``name`` labels the support image in overlays and summaries (default: its file name).
    """

    text: str | None = None
    image: ImageLike | None = None
    mask: ImageLike | None = None
    weight: float = 0.5
    name: str | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.image is None:
            raise ValueError("a Prompt needs text, an image, or both")
        if self.text is not None and not self.text.strip():
            raise ValueError("empty prompt text")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"prompt weight must be in [0, 1], got {self.weight}")

    @property
    def label(self) -> str:
        if self.image is None:
            return str(self.text)
        name = self.name or (Path(self.image).name if isinstance(self.image, (str, Path)) else "image prompt")
        return f"{self.text} + {name} (w={self.weight:g})" if self.text else name


PromptLike = str | Prompt | Path | Image.Image | np.ndarray | tuple


def as_prompt(prompt: PromptLike) -> Prompt:
    """Plain strings are text; paths, PIL images and arrays are support images; ``(image, mask)`` pairs too."""
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str):
        return Prompt(text=prompt)
    if isinstance(prompt, tuple) and len(prompt) == 2:
        return Prompt(image=prompt[0], mask=prompt[1])
    if isinstance(prompt, (Path, Image.Image, np.ndarray)):
        return Prompt(image=prompt)
    raise TypeError(f"unsupported prompt type {type(prompt).__name__}")


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
    tokenizer, prompts: Sequence[str], max_length: int | None = None, *, return_tensors: str = "np"
) -> dict[str, Any]:
    """Tokenize ``prompts`` padded to the longest, cut to ``max_length`` tokens with one warning.

    ``max_length`` is the text tower's number of positions (``ClipSeg.max_text_tokens``); the
    tokenizer's own ``model_max_length`` caps it too. Returns ``input_ids`` and ``attention_mask``,
    both ``N x L``: numpy arrays, or torch tensors with ``return_tensors="pt"``.
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
    counted = tokenizer(list(prompts), truncation=True, max_length=limit + 1)["input_ids"]
    too_long = [p for p, ids in zip(prompts, counted) if len(ids) > limit]
    if too_long:
        warnings.warn(
            f"{len(too_long)} prompt(s) are longer than the model's {limit} text positions (start and "
            f"end tokens included) and were cut to fit, e.g. {too_long[0][:60]!r}",
            stacklevel=2,
        )
    enc = tokenizer(
        list(prompts), padding=True, truncation=True, max_length=limit, return_tensors=return_tensors
    )
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


def _object_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` bounding the pixels above 0.5 of a non-empty ``mask`` (above 0 when none are)."""
    fg = mask > 0.5
    if not fg.any():
        fg = mask > 0
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _crop_square(array: np.ndarray, box: tuple[int, int, int, int], context: float) -> np.ndarray:
    """The square around ``box`` with ``context`` of its longest side on each side, zero-padded where it leaves ``array``."""
    y0, y1, x0, x1 = box
    side = max(y1 - y0, x1 - x0) * (1 + 2 * context)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    top, left = round(cy - side / 2), round(cx - side / 2)
    bottom, right = round(cy + side / 2), round(cx + side / 2)
    height, width = array.shape[:2]
    if top >= 0 and left >= 0 and bottom <= height and right <= width:
        return array[top:bottom, left:right]
    # Zeros where the square leaves the array: only the square is written (padding the array copied all of it).
    out = np.zeros((bottom - top, right - left, *array.shape[2:]), dtype=array.dtype)
    inside_y, inside_x = slice(max(top, 0), min(bottom, height)), slice(max(left, 0), min(right, width))
    out[inside_y.start - top : inside_y.stop - top, inside_x.start - left : inside_x.stop - left] = array[
        inside_y, inside_x
    ]
    return out


def prompt_crop(
    image: np.ndarray, mask: np.ndarray, style: VisualPromptStyle = VisualPromptStyle()
) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``image`` and ``mask`` a visual prompt shows, before its resize: ``h x w x 3`` and ``h x w`` uint8.

    The square around the object (``style.crop_context``; the whole image without one or without an
    object), the image clipped to uint8 and the mask scaled to 0..255. The training loader sends these
    crops and finishes the prompt on the device (``data.device_finish``); ``visual_prompt`` finishes it here.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"visual_prompt expects an H x W x 3 image, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    if image.dtype != np.uint8:
        image = np.asarray(image, dtype=np.float32).clip(0, 255).astype(np.uint8)
    if style.crop_context is not None and (mask > 0).any():
        box = _object_box(mask)
        image, mask = (
            _crop_square(image, box, style.crop_context),
            _crop_square(mask, box, style.crop_context),
        )
    return np.ascontiguousarray(image), (np.clip(mask.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def visual_prompt(
    image: np.ndarray, mask: np.ndarray, size: int, style: VisualPromptStyle = VisualPromptStyle()
) -> np.ndarray:
    """Turn ``image`` (``H x W x 3`` uint8) and ``mask`` (``H x W``, in [0, 1]) into a ``size x size x 3`` uint8 prompt.

    An empty mask gives the unmodified (resized) image: there is no object to focus on. The work
    happens on uint8 and at the prompt size: the crop (``prompt_crop``) before any float conversion,
    the float mixing only on the mask's soft edge (inside it is the image, outside the darkened blur).
    """
    image, m = prompt_crop(image, mask, style)
    img = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    m = np.asarray(Image.fromarray(m).resize((size, size), Image.BILINEAR))  # 0..255: weight m / 255
    if not m.any():
        return img.copy()  # writable, like every other result
    img32 = img.astype(np.float32)
    background = img32
    if style.blur_sigma > 0:
        # cv2 is ~4x faster than scipy here and this runs once per training sample.
        background = cv2.GaussianBlur(
            img32, ksize=(0, 0), sigmaX=style.blur_sigma, borderType=cv2.BORDER_REFLECT
        )
    if style.highlight:
        weight = m[..., None] / 255.0
        out = weight * img32 + (1 - weight) * (background * style.background_factor)
        return (out * (0.85 + 0.15 * weight)).clip(0, 255).astype(np.uint8)
    # The blur's result is ours to scale in place; without a blur ``background`` is ``img32``, used below.
    scaled = background if style.blur_sigma > 0 else np.empty_like(background)
    background = np.multiply(background, style.background_factor, out=scaled)
    # w * img + (1 - w) * background (float64) is exactly img where w = 1 and background where w = 0:
    # mix in float only on the soft edge (flat pixel indices, much faster than 2-d boolean indexing).
    # A Gaussian blur (positive weights) of 0..255 scaled by a factor in [0, 1] needs no clip.
    in_range = 0 <= style.background_factor <= 1
    out = (background if in_range else background.clip(0, 255)).astype(np.uint8)
    cv2.copyTo(img, (m == 255).view(np.uint8), out)
    edge = np.flatnonzero((m > 0) & (m < 255))
    weight = m.reshape(-1)[edge][:, None] / 255.0
    mixed = weight * img32.reshape(-1, 3)[edge] + (1 - weight) * background.reshape(-1, 3)[edge]
    out.reshape(-1, 3)[edge] = mixed.clip(0, 255).astype(np.uint8)
    return out


def text_weights(has_text: Sequence[bool], has_image: Sequence[bool], weight: Sequence[float]) -> np.ndarray:
    """The text weight ``w`` (``N``, float32) of each prompt: its ``weight`` with both parts, else 1 or 0.

    Raises:
        ValueError: a prompt has neither a text nor an image (its index is named).
    """
    text = np.asarray(has_text, dtype=bool)
    image = np.asarray(has_image, dtype=bool)
    empty = np.flatnonzero(~text & ~image)
    if empty.size:
        raise ValueError(f"prompts {empty[:5].tolist()} have neither a text nor an image")
    return np.where(text & image, np.asarray(weight, dtype=np.float32), text.astype(np.float32))


def mix_conditionals(text: Array, visual: Array, text_weight: Array | float) -> Array:
    """Interpolate prompt embeddings: ``w * text + (1 - w) * visual`` (``N x D`` each, ``w`` scalar or ``N``).

    Works on numpy arrays (the predictor) and torch tensors (training) alike; ``w`` is of the same kind.
    """
    if tuple(text.shape) != tuple(visual.shape):
        raise ValueError(
            f"text {tuple(text.shape)} and visual {tuple(visual.shape)} embeddings differ in shape"
        )
    w = text_weight
    if getattr(w, "ndim", 0) == 1:
        w = w[:, None]
    return w * text + (1 - w) * visual
