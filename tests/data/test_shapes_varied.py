"""The varied look of shapes scenes: same objects and exact masks, varied pixels, train stream only."""

from __future__ import annotations

import dataclasses

import numpy as np

from clipseg.data.datamodules import ShapesDataModule
from clipseg.data.shapes.dataset import ShapesDataset
from clipseg.data.shapes.scenes import COLORS, SHAPES, ShapesConfig, make_sample, make_scene
from clipseg.data.shapes.varied import BACKGROUNDS, VariedStyle, _pattern, finish, paint, varied_background

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
