"""Overlay legends: colours no prompt names, and a font that draws the prompt's characters (issue 15)."""

from __future__ import annotations

import numpy as np

from clipseg.inference.overlay import NAMED_PALETTE, drawable, legend_colours, overlay

NAMES = dict(NAMED_PALETTE)


def test_no_label_gets_a_colour_its_colour_words_name():
    labels = [
        "red square",
        "orange circle",
        "blue triangle",
        "purple object",
        "green circle",
        "yellow square",
    ]
    colours = legend_colours(labels)
    assert len(set(colours)) == len(labels)
    for label, colour in zip(labels, colours):
        assert not NAMES[colour] & set(label.split()), (label, colour)


def test_colours_stay_distinct_beyond_the_free_ones():
    labels = [f"{c} square" for c in ("red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan")]
    colours = legend_colours(labels)
    for label, colour in zip(labels, colours):
        assert label.split()[0] not in NAMES[colour]


def _legend_row(label: str) -> np.ndarray:
    image = np.full((64, 256, 3), 128, np.uint8)
    drawn = np.asarray(overlay(image, np.zeros((1, 64, 256), np.float32), [label]))
    return drawn[64:, 30:]  # the legend's text, right of the colour swatch


def test_unicode_prompts_are_drawn_not_boxed():
    # A character no font has draws the same box as any other missing glyph; a covered one does not.
    assert not np.array_equal(_legend_row("жжж"), _legend_row("\u0378\u0378\u0378"))
    assert not np.array_equal(_legend_row("ÄÖÜ"), _legend_row("\u0378\u0378\u0378"))
    assert drawable("红 🐶 Würfel") == "<U+7EA2> <U+1F436> Würfel"  # no glyph: named, never a box
