"""The shapes world: determinism, prompts that match their masks pixel for pixel, negatives, visual prompts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from clipseg.data.datamodules import ShapesDataModule
from clipseg.data.shapes.dataset import ShapesDataset
from clipseg.data.shapes.scenes import (
    COLORS,
    NUM_CATEGORIES,
    POSITIONS,
    SHAPES,
    SIZES,
    ShapesConfig,
    make_sample,
    make_scene,
)

SIZE = 64
VOCABULARY = set(COLORS) | set(SHAPES) | set(SIZES) | set(POSITIONS) | {"object", "on", "at", "the"}


def samples(n: int, **config) -> list[dict]:
    return [make_sample(7, i, split="val", config=ShapesConfig(size=SIZE, **config)) for i in range(n)]


def test_same_seed_and_index_give_the_same_sample():
    a, b = make_sample(3, 5, split="val"), make_sample(3, 5, split="val")
    assert (
        a["text"] == b["text"]
        and np.array_equal(a["image"], b["image"])
        and np.array_equal(a["mask"], b["mask"])
    )
    assert not np.array_equal(a["image"], make_sample(3, 6, split="val")["image"])
    assert not np.array_equal(a["image"], make_sample(3, 5, split="test")["image"])


def test_scene_objects_are_painted_exactly_on_their_coverage():
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, objects = make_scene(rng, SIZE, 4)
        assert 1 <= len(objects) <= 4
        union = np.zeros((SIZE, SIZE), int)
        for obj in objects:
            pixels = image[obj.coverage]
            assert obj.coverage.sum() > 10 and (pixels == pixels[0]).all()  # one flat color, no anti-aliasing
            assert np.abs(pixels[0].astype(int) - COLORS[obj.color]).max() <= 12
            union += obj.coverage
        assert union.max() == 1  # objects never overlap, so every coverage is fully visible


def test_masks_are_exactly_the_pixels_of_the_matching_objects():
    for sample in samples(60, negative_prob=0.0, visual_prob=0.0):
        mask = sample["mask"].astype(bool)
        assert mask.any(), sample["text"]
        assert set(sample["text"].split()) <= VOCABULARY
        colors = np.unique(sample["image"][mask], axis=0)
        # The target's colors, found anywhere in the image, give back exactly the mask.
        painted = (sample["image"][:, :, None, :] == colors[None, None]).all(-1).any(-1)
        assert np.array_equal(painted, mask), sample["text"]
        query = sample["meta"]["query"]
        if "color" in query:
            assert (np.abs(colors.astype(int) - COLORS[query["color"]]).max(1) <= 12).all()


def test_positional_prompts_pick_objects_clearly_on_that_side():
    seen = 0
    for sample in samples(150, negative_prob=0.0, visual_prob=0.0):
        query = sample["meta"]["query"]
        side = query.get("horizontal") or query.get("vertical")
        if side is None:
            continue
        seen += 1
        assert f" the {side}" in sample["text"]
        parts, n = ndimage.label(sample["mask"])
        for cy, cx in ndimage.center_of_mass(sample["mask"], parts, range(1, n + 1)):
            center = cx if side in ("left", "right") else cy
            assert center < 0.42 * SIZE if side in ("left", "top") else center > 0.58 * SIZE, sample["text"]
        # No other object of the described kind sits in the ambiguous middle band.
        axis = 3 if "horizontal" in query else 4
        kind = {k: v for k, v in query.items() if k not in ("horizontal", "vertical")}
        for color, shape, size, *sides in sample["meta"]["objects"]:
            attrs = {"color": color, "shape": shape, "size": size}
            if all(attrs[k] == v for k, v in kind.items()):
                assert sides[axis - 3] is not None
    assert seen >= 5


def test_negatives_name_an_absent_color_and_shape_and_have_empty_masks():
    for sample in samples(20, negative_prob=1.0, visual_prob=0.0):
        color, shape = sample["text"].split()
        assert not sample["mask"].any()
        assert all((c, s) != (color, shape) for c, s, *_ in sample["meta"]["objects"])


def test_visual_prompts_show_the_named_color_and_shape():
    for sample in samples(20, negative_prob=0.0, visual_prob=1.0):
        support = sample["support"]
        assert support.shape == (SIZE, SIZE, 3) and support.dtype == np.uint8
        color, _ = sample["text"].split()
        # The prompt is cropped around the object: its center shows the object's color, the darkened
        # background is far from it.
        center = support[SIZE // 2 - 1 : SIZE // 2 + 1, SIZE // 2 - 1 : SIZE // 2 + 1].reshape(-1, 3).mean(0)
        assert np.abs(center - COLORS[color]).max() < 40, sample["text"]
        assert support[0, 0].max() < 60
        assert 0.0 <= sample["text_weight"] <= 0.5


def test_twin_scenes_ask_for_one_of_two_objects_that_share_a_color():
    hard = 0
    for sample in samples(40, negative_prob=0.0, visual_prob=0.0, twin_prob=1.0):
        query, objects = sample["meta"]["query"], sample["meta"]["objects"]
        assert set(query) == {"color", "shape"}, sample["text"]
        same_color = [shape for color, shape, *_ in objects if color == query["color"]]
        hard += query["shape"] in same_color and len(set(same_color)) > 1
    assert hard >= 36  # only a failed placement of the second object leaves an ordinary scene


def test_twin_curriculum_changes_only_the_train_stream():
    module = ShapesDataModule(image_size=32, twin_prob=1.0)
    assert module.dataset("train").config.twin_prob == 1.0
    assert module.dataset("val").config.twin_prob == module.dataset("test").config.twin_prob == 0.0


def test_hard_absent_prompts_name_a_missing_shape_in_a_colour_the_scene_has():
    natural = samples(60, negative_prob=1.0)
    hard = samples(60, negative_prob=1.0, hard_absent_prob=1.0)
    near = 0
    for a, b in zip(natural, hard, strict=True):
        assert np.array_equal(a["image"], b["image"])  # the same scenes, only the prompt differs
        objects = b["meta"]["objects"]
        assert not b["mask"].any() and (b["meta"]["query"]["color"], b["meta"]["query"]["shape"]) not in {
            (color, shape) for color, shape, *_ in objects
        }
        near += b["meta"]["query"]["color"] in {color for color, *_ in objects}
    # Every scene with a missing shape in one of its colours asks for one; random absent pairs rarely do.
    assert near == 60
    assert sum(a["meta"]["query"]["color"] in {c for c, *_ in a["meta"]["objects"]} for a in natural) < 30
    module = ShapesDataModule(image_size=32, hard_absent_prob=1.0)
    assert module.dataset("train").config.hard_absent_prob == 1.0
    assert module.dataset("val").config.hard_absent_prob == 0.0


def _square_fills(plain_rotation: float) -> tuple[list[tuple], list[float]]:
    """The objects (colour, shape, centre) of 80 one-object scenes, and each square's area / bounding-box
    area (1 upright, 0.5 turned 45 degrees)."""
    placed, fills = [], []
    for seed in range(80):
        (obj,) = make_scene(np.random.default_rng(seed), 128, 1, plain_rotation=plain_rotation)[1]
        placed.append((obj.color, obj.shape, obj.cx, obj.cy))
        if obj.shape == "square":
            (box,) = ndimage.find_objects(obj.coverage.astype(int))
            fills.append(float(obj.coverage[box].mean()))
    return placed, fills


def test_plain_rotation_turns_the_same_objects_through_every_pose_in_the_train_stream_only():
    upright_objects, upright = _square_fills(ShapesConfig.plain_rotation)
    turned_objects, turned = _square_fills(np.pi)
    assert upright_objects == turned_objects  # the same draws: colours, shapes and places
    assert len(upright) >= 8
    # Turned at most 0.25 rad a square fills >= 1 / (cos 0.25 + sin 0.25)^2 = 0.68 of its box; near
    # 45 degrees about half.
    assert min(upright) > 0.62
    assert sum(fill < 0.6 for fill in turned) >= len(turned) // 4
    module = ShapesDataModule(image_size=32, plain_rotation=np.pi)
    assert module.dataset("train").config.plain_rotation == np.pi
    assert module.dataset("val").config.plain_rotation == ShapesConfig.plain_rotation


def test_category_labels_name_each_pixels_color_and_shape():
    plain = samples(20, negative_prob=0.0)
    labelled = samples(20, negative_prob=0.0, category_labels=True)
    for a, b in zip(plain, labelled, strict=True):
        assert a["label"] is None and np.array_equal(a["image"], b["image"])  # the same scenes, plus labels
        label = b["label"]
        assert label.shape == (SIZE, SIZE)
        objects = label != 255  # the background is unlabelled
        assert objects.any() and (~objects).any()
        assert label[objects].min() >= 1 and label[objects].max() < NUM_CATEGORIES
        for color, shape, *_ in b["meta"]["objects"]:
            category = 1 + list(COLORS).index(color) * len(SHAPES) + SHAPES.index(shape)
            pixels = b["image"][label == category].astype(int)
            assert len(pixels) > 0, (color, shape)
            assert np.abs(pixels - COLORS[color]).max() <= 12  # the object's own (jittered) color
        query = b["meta"]["query"]
        if set(query) == {"color", "shape"}:  # such a prompt's mask is exactly its category's pixels
            category = 1 + list(COLORS).index(query["color"]) * len(SHAPES) + SHAPES.index(query["shape"])
            assert np.array_equal(b["mask"] > 0.5, label == category), b["text"]
    module = ShapesDataModule(image_size=32, category_labels=True, num_workers=0)
    assert module.dataset("train").config.category_labels
    assert not module.dataset("val").config.category_labels


def test_val_dataset_yields_make_sample_in_order_and_train_is_infinite_and_reproducible():
    val = ShapesDataset(split="val", seed=7, size=SIZE, length=5)
    assert len(val) == 5
    for got, want in zip(val, samples(5, negative_prob=0.2, visual_prob=0.5), strict=True):
        assert got["sample_id"] == want["sample_id"] and np.array_equal(got["image"], want["image"])

    def first(n):
        return [s["text"] for s in itertools.islice(ShapesDataset(split="train", seed=1, size=32), n)]

    assert first(30) == first(30)
    train = ShapesDataset(split="train", seed=1, size=32)
    epoch0 = [s["sample_id"] for s in itertools.islice(train, 3)]
    epoch1 = [s["sample_id"] for s in itertools.islice(train, 3)]
    assert epoch0 != epoch1  # each new iteration (epoch) is a new stream


def test_train_workers_draw_distinct_streams():
    loader = torch.utils.data.DataLoader(
        ShapesDataset(split="train", seed=0, size=32), batch_size=None, num_workers=2, collate_fn=lambda s: s
    )
    ids = [s["sample_id"] for s in itertools.islice(loader, 8)]
    assert len(set(ids)) == 8


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="fixed length"):
        ShapesDataset(split="val", size=32)
    with pytest.raises(ValueError, match="size"):
        ShapesConfig(size=8)


def test_the_rank_seen_when_built_holds_in_workers_without_a_process_group(monkeypatch):
    # Lightning builds datasets in each rank's main process; spawned workers see no RANK and no group.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    dataset = ShapesDataset(split="val", seed=0, size=32, length=5)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert len(dataset) == 2
    assert [s["sample_id"] for s in dataset] == ["shapes-val-0-1", "shapes-val-0-3"]
