"""Overlays of predicted masks on the input image, with a legend naming each prompt."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct, colour-blind-friendly colours (Okabe-Ito), cycled when there are more prompts.
PALETTE = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (120, 120, 120),
)


def overlay(
    image: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    *,
    threshold: float | None = None,
    alpha: float = 0.55,
) -> Image.Image:
    """Blend ``probs`` (``N x H x W`` in [0, 1]) over ``image`` (``H x W x 3`` uint8) and add a legend.

    With ``threshold`` the masks are binarised first; otherwise the colour strength follows the probability.
    """
    if probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs of shape {probs.shape} do not match image of shape {image.shape}")
    if len(labels) != probs.shape[0]:
        raise ValueError(f"{len(labels)} labels for {probs.shape[0]} masks")
    out = image.astype(np.float32)
    for i, p in enumerate(probs):
        strength = (p >= threshold).astype(np.float32) if threshold is not None else p
        colour = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        a = (alpha * strength)[..., None]
        out = out * (1 - a) + colour * a
    return _with_legend(Image.fromarray(out.clip(0, 255).astype(np.uint8)), labels)


def _with_legend(img: Image.Image, labels: Sequence[str]) -> Image.Image:
    font_size = max(12, img.height // 30)
    font = ImageFont.load_default(size=font_size)
    row = font_size + 8
    canvas = Image.new("RGB", (img.width, img.height + row * len(labels) + 8), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        y = img.height + 4 + i * row
        draw.rectangle((6, y + 2, 6 + font_size, y + 2 + font_size), fill=PALETTE[i % len(PALETTE)])
        draw.text((14 + font_size, y), label, fill=(0, 0, 0), font=font)
    return canvas
