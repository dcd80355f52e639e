"""Overlays of predicted masks on the input image, with a legend naming each prompt."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct colours (magenta, cyan and lime, rare in photos, then Okabe-Ito's colour-blind-friendly
# set), each with the colour words a reader could take it for. A prompt that names one of those words
# ("red square") never gets that colour: a legend swatch must not look like the object asked for.
NAMED_PALETTE: tuple[tuple[tuple[int, int, int], frozenset[str]], ...] = (
    ((255, 0, 255), frozenset({"magenta", "pink", "purple", "violet", "fuchsia"})),
    ((0, 230, 230), frozenset({"cyan", "turquoise", "aqua", "teal", "blue"})),
    ((140, 255, 0), frozenset({"lime", "green", "yellow"})),
    ((230, 159, 0), frozenset({"orange", "yellow", "gold", "amber", "brown"})),
    ((86, 180, 233), frozenset({"blue", "cyan", "sky", "turquoise"})),
    ((0, 158, 115), frozenset({"green", "teal", "turquoise"})),
    ((213, 94, 0), frozenset({"red", "orange", "vermilion", "brown"})),
    ((240, 228, 66), frozenset({"yellow", "gold", "lemon"})),
    ((0, 114, 178), frozenset({"blue", "navy"})),
    ((120, 120, 120), frozenset({"gray", "grey", "silver", "black", "white"})),
)


def _colour_words(label: str) -> set[str]:
    return set(re.findall(r"[a-z]+", label.lower()))


# A palette colour "is in the image" when this share of its pixels lies within this RGB distance of it.
IMAGE_COLOUR_SHARE = 0.002
IMAGE_COLOUR_DISTANCE = 60.0


def _colours_in(image: np.ndarray | None) -> set[tuple[int, int, int]]:
    """Palette colours that some object of ``image`` (``H x W x 3`` uint8) already shows."""
    if image is None:
        return set()
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 65536)))  # ~64k pixels are plenty
    pixels = image[::step, ::step].reshape(-1, 3).astype(np.float32)
    return {
        colour
        for colour, _ in NAMED_PALETTE
        if (np.linalg.norm(pixels - np.array(colour, np.float32), axis=1) < IMAGE_COLOUR_DISTANCE).mean()
        >= IMAGE_COLOUR_SHARE
    }


def legend_colours(labels: Sequence[str], image: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """One colour per label: distinct while the palette lasts, never one that the label's colour words
    name, and preferably none that any label's colour words name or that ``image`` already shows (a
    swatch must not look like another object of the scene)."""
    everyone = set().union(*map(_colour_words, labels)) if labels else set()
    in_image = _colours_in(image)
    chosen: list[tuple[int, int, int]] = []
    for label in labels:
        own = _colour_words(label)
        unused = [(c, names) for c, names in NAMED_PALETTE if c not in chosen]
        preference = (
            [c for c, names in unused if not names & everyone and c not in in_image],
            [c for c, names in unused if not names & everyone],
            [c for c, names in unused if not names & own],
            [c for c, names in NAMED_PALETTE if not names & own],  # more labels than colours
            [c for c, _ in NAMED_PALETTE],  # a label naming every colour
        )
        chosen.append(next(options for options in preference if options)[0])
    return chosen


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
    colours = legend_colours(labels, image)
    out = image.astype(np.float32)
    for p, colour in zip(probs, colours):
        strength = (p >= threshold).astype(np.float32) if threshold is not None else p
        a = (alpha * strength)[..., None]
        out = out * (1 - a) + np.array(colour, dtype=np.float32) * a
    return _with_legend(Image.fromarray(out.clip(0, 255).astype(np.uint8)), labels, colours)


def _font_file() -> Path:
    """DejaVu Sans, shipped with matplotlib (a dependency): Latin, Greek, Cyrillic, Arabic, Hebrew, ..."""
    spec = importlib.util.find_spec("matplotlib")
    assert spec is not None and spec.submodule_search_locations  # a declared dependency
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


@functools.cache
def _covered() -> frozenset[int]:
    """Code points the legend font has glyphs for."""
    from fontTools.ttLib import TTFont  # a matplotlib dependency

    return frozenset(TTFont(_font_file(), lazy=True).getBestCmap())


def drawable(label: str) -> str:
    """``label`` with each character the font lacks (CJK, emoji) written as ``<U+XXXX>``, never as a box."""
    covered = _covered()
    return "".join(ch if ord(ch) in covered or ch.isspace() else f"<U+{ord(ch):04X}>" for ch in label)


def _with_legend(
    img: Image.Image, labels: Sequence[str], colours: Sequence[tuple[int, int, int]]
) -> Image.Image:
    font_size = max(12, img.height // 30)
    font = ImageFont.truetype(str(_font_file()), size=font_size)
    row = font_size + 8
    canvas = Image.new("RGB", (img.width, img.height + row * len(labels) + 8), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (label, colour) in enumerate(zip(labels, colours)):
        y = img.height + 4 + i * row
        draw.rectangle((6, y + 2, 6 + font_size, y + 2 + font_size), fill=colour)
        draw.text((14 + font_size, y), drawable(label), fill=(0, 0, 0), font=font)
    return canvas
