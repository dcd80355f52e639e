"""The varied look of shapes scenes: same objects and exact masks, varied pixels, train stream only."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from clipseg.data.datamodules import ShapesDataModule
from clipseg.data.shapes import scenes
from clipseg.data.shapes.dataset import ShapesDataset
from clipseg.data.shapes.scenes import COLORS, SHAPES, ShapesConfig, make_sample, make_scene
from clipseg.data.shapes.varied import (
    BACKGROUNDS,
    RADIAL_BACKGROUNDS,
    VariedStyle,
    _pattern,
    finish,
    paint,
    style_from,
    varied_background,
)

ALWAYS = VariedStyle(prob=1.0)
# No finishing touches and aliased edges: every object pixel keeps the colour it was painted with.
CLEAN = dataclasses.replace(
    ALWAYS,
    antialias_prob=0.0,
    contrast=(1.0, 1.0),
    brightness=(0.0, 0.0),
    noise_prob=0.0,
    blur_prob=0.0,
    jpeg_prob=0.0,
)


def varied(n: int, style: VariedStyle = ALWAYS, **config) -> list[dict]:
    return [make_sample(7, i, split="train", config=ShapesConfig(style=style, **config)) for i in range(n)]


def test_varied_objects_keep_their_named_colour_and_exact_coverage():
    rng = np.random.default_rng(0)
    for _ in range(30):
        image, objects = make_scene(rng, 160, 4, style=CLEAN)
        for obj in objects:
            pixels = image[obj.coverage].astype(int)
            assert obj.coverage.sum() > 5 and (pixels == pixels[0]).all()  # painted flat on its coverage
            low, high = CLEAN.lightness
            base = np.asarray(COLORS[obj.color])
            lo = np.floor((base - CLEAN.color_jitter) * low).clip(0, 255)
            hi = np.ceil((base + CLEAN.color_jitter) * high).clip(0, 255)
            assert ((pixels[0] >= lo) & (pixels[0] <= hi)).all(), obj.color


def test_masks_and_labels_follow_the_varied_canvas():
    sizes = set()
    for sample in varied(40, negative_prob=0.0, visual_prob=0.5, category_labels=True):
        side = sample["image"].shape[0]
        sizes.add(side)
        assert ALWAYS.canvas[0] <= side <= ALWAYS.canvas[1]
        assert sample["image"].shape == (side, side, 3)
        assert sample["mask"].shape == sample["label"].shape == (side, side)
        assert sample["mask"].any(), sample["text"]
        query = sample["meta"]["query"]
        if set(query) == {"color", "shape"}:  # the mask is exactly that category's pixels
            category = 1 + list(COLORS).index(query["color"]) * len(SHAPES) + SHAPES.index(query["shape"])
            assert np.array_equal(sample["mask"] > 0.5, sample["label"] == category), sample["text"]
    assert len(sizes) > 10  # canvases vary


def test_varied_samples_are_reproducible_and_unvaried_ones_plain():
    a, b = varied(3), varied(3)
    for x, y in zip(a, b, strict=True):
        assert x["text"] == y["text"] and np.array_equal(x["image"], y["image"])
    never = ShapesConfig(size=64, style=VariedStyle(prob=0.0))
    assert all(make_sample(7, i, config=never)["image"].shape == (64, 64, 3) for i in range(10))


def test_every_background_kind_is_drawn_and_varies_across_scenes():
    rng = np.random.default_rng(1)
    for kind in BACKGROUNDS:
        pattern = _pattern(kind, rng, 64)
        assert pattern.shape == (64, 64) and pattern.min() >= -0.05 and pattern.max() <= 1.05, kind
        assert (np.ptp(pattern) == 0) == (kind == "flat"), kind
    images = [varied_background(rng, 64) for _ in range(20)]
    assert all(image.dtype == np.uint8 and image.shape == (64, 64, 3) for image in images)
    assert len({image.tobytes() for image in images}) == 20


def test_antialiased_edges_blend_only_at_the_border():
    image = np.zeros((32, 32, 3), np.uint8)
    coverage = np.zeros((32, 32), bool)
    coverage[8:20, 8:20] = True
    paint(image, coverage, np.array([200.0, 100.0, 50.0]), antialias=True)
    assert (image[10:18, 10:18] == [200, 100, 50]).all()  # interior: the colour
    edge = image[8, 9:19, 0]
    assert ((edge >= 100) & (edge < 200)).all()  # border pixels of the mask: mixed, at least half
    outside = image[7, 9:19, 0]
    assert ((outside > 0) & (outside < 100)).all()  # the ring outside: a little of the colour
    assert not image[:6].any() and not image[:, :6].any()  # nothing further away


def test_finish_compresses_and_changes_brightness():
    rng = np.random.default_rng(2)
    image = varied_background(rng, 64)
    jpeg_only = dataclasses.replace(CLEAN, jpeg_prob=1.0, jpeg_quality=(30, 30))
    compressed = finish(rng, image, jpeg_only)
    assert compressed.shape == image.shape and not np.array_equal(compressed, image)
    assert np.abs(compressed.astype(int) - image).mean() < 10  # lossy, not another picture
    brighter = finish(rng, image, dataclasses.replace(CLEAN, brightness=(20.0, 20.0)))
    assert np.array_equal(brighter, (image.astype(int) + 20).clip(0, 255))


def test_varied_look_applies_to_the_train_stream_only():
    module = ShapesDataModule(image_size=32, scene_size=48, varied_prob=1.0, num_workers=0, val_length=4)
    plain = ShapesDataModule(image_size=32, scene_size=48, num_workers=0, val_length=4)
    for stage in ("val", "test"):
        assert module.dataset(stage).config == plain.dataset(stage).config
    train = ShapesDataset(split="train", size=48, varied_prob=1.0)
    sides = {sample["image"].shape[0] for sample, _ in zip(train, range(20))}
    assert len(sides) > 5  # varied canvases, not the 48 px scenes


def test_default_varied_stream_is_the_one_v2_was_trained_on():
    # Fingerprint of 12 default varied samples (JPEG off: encoders differ between library versions),
    # taken with the code before the style's options existed: adding options must not move a pixel.
    style = dataclasses.replace(ALWAYS, jpeg_prob=0.0)
    digest = hashlib.sha256()
    for i in range(12):
        sample = make_sample(3, i, split="train", config=ShapesConfig(size=64, style=style))
        digest.update(sample["image"].tobytes())
        digest.update(np.ascontiguousarray(sample["mask"]).tobytes())
        digest.update(sample["text"].encode())
    assert digest.hexdigest()[:16] == "d9809d6e74452581"
    assert style_from(1.0, None) == style_from(1.0, {}) == ALWAYS


def test_rotation_option_turns_objects_through_every_pose(monkeypatch):
    angles: list[float] = []
    real = scenes.rasterize

    def recording(shape, cx, cy, r, angle, size):
        angles.append(angle)
        return real(shape, cx, cy, r, angle, size)

    monkeypatch.setattr(scenes, "rasterize", recording)
    rng = np.random.default_rng(0)
    for _ in range(40):
        make_scene(rng, 96, 4, style=ALWAYS)
    assert max(map(abs, angles)) <= ALWAYS.rotation  # the default: at most 0.5 rad either way
    angles.clear()
    turning = style_from(1.0, {"rotation": np.pi})
    for _ in range(40):
        make_scene(rng, 96, 4, style=turning)
    # beyond a triangle's 120 degree symmetry (60 either way) and spread over the whole range
    assert max(map(abs, angles)) > 2 * np.pi / 3 and min(angles) < -2 * np.pi / 3
    assert max(map(abs, angles)) <= np.pi


def test_radial_backgrounds_are_drawn_only_when_asked(monkeypatch):
    rng = np.random.default_rng(3)
    radial = _pattern("radial", rng, 64)
    assert radial.dtype == np.float32 and radial.min() >= 0 and radial.max() == pytest.approx(1.0)
    # level sets are circles: the pattern's smallest value sits where it grows in every direction
    y, x = np.unravel_index(np.argmin(radial), radial.shape)
    inner = radial[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
    assert (inner >= radial[y, x]).all()
    vignette = _pattern("vignette", rng, 64)
    assert (
        vignette[28:36, 28:36].max() < 0.2
        and min(vignette[0, 0], vignette[0, -1], vignette[-1, 0], vignette[-1, -1]) > 0.3
    )
    # a vignette darkens towards the corners
    shaded = [varied_background(rng, 64, ("vignette",)).astype(float) for _ in range(20)]
    corners = np.mean(
        [[im[:4, :4].mean(), im[-4:, -4:].mean(), im[:4, -4:].mean(), im[-4:, :4].mean()] for im in shaded]
    )
    assert corners < np.mean([im[28:36, 28:36].mean() for im in shaded])
    drawn = style_from(1.0, {"backgrounds": list(BACKGROUNDS + RADIAL_BACKGROUNDS)})
    assert drawn.backgrounds == BACKGROUNDS + RADIAL_BACKGROUNDS  # a YAML list becomes the tuple
    asked: list[tuple[str, ...]] = []

    def recording(rng, size, kinds=BACKGROUNDS):
        asked.append(kinds)
        return varied_background(rng, size, kinds)

    monkeypatch.setattr(scenes, "varied_background", recording)
    make_scene(rng, 64, 2, style=drawn)
    assert asked == [drawn.backgrounds]  # scenes draw from the style's kinds
    with pytest.raises(ValueError, match="spiral"):
        style_from(1.0, {"backgrounds": ["flat", "spiral"]})


def test_varied_style_options_reach_the_train_stream_only():
    options = {"rotation": 3.0, "backgrounds": ["radial", "vignette"]}
    module = ShapesDataModule(
        image_size=32, scene_size=48, varied_prob=0.5, varied_style=options, num_workers=0
    )
    style = module.dataset("train").config.style
    assert style.rotation == 3.0 and style.backgrounds == RADIAL_BACKGROUNDS and style.prob == 0.5
    assert module.dataset("val").config.style is None
