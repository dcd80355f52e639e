"""Overlay legends: colours no prompt names, and a font that draws the prompt's characters (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipseg.inference.overlay import NAMED_PALETTE, drawable, legend_colours, overlay

NAMES = dict(NAMED_PALETTE)
EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "clipseg" / "assets" / "example.png"


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


def test_legend_colours_avoid_colours_the_scene_already_shows():
    # The demo scene: red and orange squares, a blue circle and a purple triangle on gray-green.
    from clipseg.core.images import load_image

    image = load_image(EXAMPLE)
    labels = ["red square", "blue circle", "purple triangle"]
    chosen = legend_colours(labels, image)
    orange = np.array([230, 159, 0], np.float32)
    assert orange.tolist() in [list(c) for c in legend_colours(labels)]  # without the image: orange
    for colour in chosen:  # with it, no swatch can be taken for the orange square
        assert np.linalg.norm(np.array(colour, np.float32) - orange) > 1, chosen
    assert len(set(chosen)) == len(labels)


def _legend_row(label: str) -> np.ndarray:
    image = np.full((64, 256, 3), 128, np.uint8)
    drawn = np.asarray(overlay(image, np.zeros((1, 64, 256), np.float32), [label]))
    return drawn[64:, 30:]  # the legend's text, right of the colour swatch


def test_unicode_prompts_are_drawn_not_boxed():
    # A character no font has draws the same box as any other missing glyph; a covered one does not.
    assert not np.array_equal(_legend_row("жжж"), _legend_row("\u0378\u0378\u0378"))
    assert not np.array_equal(_legend_row("ÄÖÜ"), _legend_row("\u0378\u0378\u0378"))
    assert drawable("红 🐶 Würfel") == "<U+7EA2> <U+1F436> Würfel"  # no glyph: named, never a box
