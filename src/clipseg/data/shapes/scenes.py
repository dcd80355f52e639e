"""``shapes``: a procedural referring-segmentation world that needs no download.

A scene holds 1–4 non-overlapping objects (circle, square, triangle; red, green, blue, yellow,
purple, orange; small or large) on a low-saturation background (solid, gradient, light noise), so
object colors never blend into it. A prompt names some attributes of one object ("red circle",
"large blue square", "triangle on the left", "green object"); the target is the union of every
object that matches all named attributes. Negatives name a color + shape that is absent (empty
mask). Visual prompts show the same color + shape in another scene, made into a support image with
``prompts.visual_prompt``.

Objects are rasterized once into a boolean coverage map (PIL, no anti-aliasing) and that map both
paints the image and forms the target, so masks are pixel exact. Everything is a pure function of a
seed: ``make_sample(seed, index, split=...)`` always returns the same sample.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipseg.core.prompts import VisualPromptStyle, visual_prompt
from clipseg.data.sample_io import encode_png, make_row
from clipseg.data.schema import NO_CLASS, Sample
from clipseg.data.shapes.drawing import free_spot, plain_background, rasterize
from clipseg.data.shapes.varied import VariedStyle, finish, paint, varied_background

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (140, 40, 180),
    "orange": (250, 140, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom")
SPLITS = ("train", "val", "test")

# Radius ranges as fractions of the canvas side: disjoint, so "small"/"large" are never ambiguous.
RADIUS = {"small": (0.06, 0.09), "large": (0.14, 0.19)}
# Centers inside the middle band (0.4–0.6 of the side) have no left/right (top/bottom) side.
_SIDE_BAND = (0.4, 0.6)
_COLOR_JITTER = 12  # per-channel jitter of an object's color; keeps colors far apart


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object: attributes plus its ``H x W`` bool coverage (the exact painted pixels)."""

    color: str
    shape: str
    size: str
    cx: float
    cy: float
    coverage: np.ndarray = field(repr=False)

    @property
    def horizontal(self) -> str | None:
        return _side(self.cx, self.coverage.shape[1], ("left", "right"))

    @property
    def vertical(self) -> str | None:
        return _side(self.cy, self.coverage.shape[0], ("top", "bottom"))


@dataclass(frozen=True)
class ShapesConfig:
    """How samples are drawn.

    Args:
        size: side of the square scene in pixels (64–352 are sensible).
        min_objects / max_objects: objects per scene (fewer only if placement fails).
        negative_prob: probability that the prompt names an absent color + shape (empty mask).
        visual_prob: probability that a support image (visual prompt) is attached.
        hard_absent_prob: share of the absent prompts that name a missing shape in a colour the scene
            has (scene: a red circle; prompt: "red square"), the near misses a model trained on random
            absent pairs still paints (0 keeps the natural draw, and the scenes exactly as they were).
        plain_rotation: plain-look objects turn by up to this many radians either way (0.25, the
            original renderer; pi shows every pose a square or triangle can have, as
            ``VariedStyle.rotation`` does for the varied look). The scenes draw the same numbers either way.
        twin_prob: probability of a hard scene: a second object repeats the first one's color with
            another shape, and the prompt names (or shows) the color + shape of one of the two, so
            color alone cannot answer it (a training curriculum; 0 keeps the natural scenes).
        text_weight_range: w ~ U(range) for samples with a support image (w = 1 without one).
        support_size: side of the visual prompt image (defaults to ``size``).
        category_labels: attach ``label``, the per-pixel category map (see ``category_map``), for
            dense auxiliary supervision in training.
        prompt_style: how the support scene becomes a visual prompt.
        style: draw a ``style.prob`` share of the scenes with a varied look (backgrounds, colours,
            edges, object and canvas sizes, compression: see ``clipseg.data.shapes.varied``); ``None`` keeps the
            plain world (and its scenes exactly as they were).
    """

    size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    negative_prob: float = 0.2
    visual_prob: float = 0.5
    twin_prob: float = 0.0
    hard_absent_prob: float = 0.0
    plain_rotation: float = 0.25
    text_weight_range: tuple[float, float] = (0.0, 0.5)
    support_size: int | None = None
    category_labels: bool = False
    prompt_style: VisualPromptStyle = field(default_factory=VisualPromptStyle)
    style: VariedStyle | None = None

    def __post_init__(self) -> None:
        if self.size < 32:
            raise ValueError(f"shapes scenes need size >= 32 px, got {self.size}")
        if not 1 <= self.min_objects <= self.max_objects <= 4:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects <= 4, got {self.min_objects}, {self.max_objects}"
            )


def _side(center: float, extent: int, names: tuple[str, str]) -> str | None:
    if center < _SIDE_BAND[0] * extent:
        return names[0]
    if center > _SIDE_BAND[1] * extent:
        return names[1]
    return None


def make_scene(
    rng: np.random.Generator,
    size: int,
    n_objects: int,
    required: tuple[str, str] | None = None,
    twin: bool = False,
    style: VariedStyle | None = None,
    plain_rotation: float = 0.25,
) -> tuple[np.ndarray, list[ShapeObject]]:
    """Draw a scene: ``(image H x W x 3 uint8, objects)``.

    ``required`` = (color, shape) forces the first object to have that color and shape (used for the
    support scene of a visual prompt). ``twin`` gives the second object the first one's color and
    another shape. Objects never overlap, so each coverage is fully visible. ``style`` draws the scene
    with a varied look (see ``clipseg.data.shapes.varied``; the same objects and masks);
    ``plain_rotation`` is how far plain-look objects turn (see ``ShapesConfig``).
    """
    image = plain_background(rng, size) if style is None else varied_background(rng, size, style.backgrounds)
    # The style's draws come only with a style, so plain scenes stay exactly as they were.
    scale, turn = (
        (1.0, plain_rotation) if style is None else (rng.uniform(*style.object_scale), style.rotation)
    )
    antialias = style is not None and rng.random() < style.antialias_prob
    objects: list[ShapeObject] = []
    placed: list[tuple[float, float, float]] = []
    for i in range(n_objects):
        if i == 0 and required is not None:
            color, shape = required
        elif i == 1 and twin and objects:
            color = objects[0].color
            shape = str(rng.choice([s for s in SHAPES if s != objects[0].shape]))
        else:
            color, shape = str(rng.choice(list(COLORS))), str(rng.choice(SHAPES))
        size_name = str(rng.choice(SIZES))
        r = rng.uniform(*RADIUS[size_name]) * size * scale
        spot = free_spot(rng, r, size, placed)
        if spot is None:
            continue
        cx, cy = spot
        placed.append((cx, cy, r))
        coverage = rasterize(shape, cx, cy, r, rng.uniform(-turn, turn), size)
        if style is None:
            jitter = rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, 3)
            image[coverage] = np.clip(np.array(COLORS[color]) + jitter, 0, 255).astype(np.uint8)
        else:
            paint(image, coverage, style.object_rgb(rng, COLORS[color]), antialias)
        objects.append(ShapeObject(color, shape, size_name, float(cx), float(cy), coverage))
    return (image if style is None else finish(rng, image, style)), objects


# Category ids start at 1: id 0 (the background) never occurs in ``category_map``, but the shipped
# shapes-tiny recipe trained its 19-way head with it, so the numbering stays.
NUM_CATEGORIES = 1 + len(COLORS) * len(SHAPES)


def category_map(objects: list[ShapeObject], size: int) -> np.ndarray:
    """``size x size`` int64 category of each pixel: 255 = background, ``1 + color * 3 + shape`` on an object.

    A category is exactly what a "color shape" prompt names (indices follow ``COLORS`` and ``SHAPES``).
    Background is left unlabelled (the ignore index): it covers most patches and would drown the
    object patches, whose shape a small ViT is slow to learn.
    """
    label = np.full((size, size), 255, dtype=np.int64)
    for obj in objects:
        label[obj.coverage] = 1 + list(COLORS).index(obj.color) * len(SHAPES) + SHAPES.index(obj.shape)
    return label


def _matches(obj: ShapeObject, query: dict[str, str]) -> bool:
    # query keys are ShapeObject attribute names: color, shape, size, horizontal, vertical
    return all(getattr(obj, k) == v for k, v in query.items())


def phrase_for(query: dict[str, str]) -> str:
    """The phrase naming a query, e.g. ``{"size": "large", "color": "blue", "shape": "square"}`` → "large blue square"."""
    words = [query[k] for k in ("size", "color") if k in query] + [query.get("shape", "object")]
    if "horizontal" in query:
        words.append(f"on the {query['horizontal']}")
    if "vertical" in query:
        words.append(f"at the {query['vertical']}")
    return " ".join(words)


# Attribute subsets a positive prompt may use, e.g. ("color",) → "green object".
_QUERY_KINDS: tuple[tuple[str, ...], ...] = (
    ("color", "shape"),
    ("color", "shape"),
    ("size", "color", "shape"),
    ("shape",),
    ("color",),
    ("size", "shape"),
    ("shape", "horizontal"),
    ("shape", "vertical"),
    ("color", "shape", "horizontal"),
    ("color", "vertical"),
)


def _positive_query(rng: np.random.Generator, objects: list[ShapeObject]) -> dict[str, str]:
    """Describe a random object by a random attribute subset that picks a well-defined set.

    A position word is used only when the anchor and every other object sharing the remaining
    attributes lie clearly on one side (outside the middle band), so "the triangle on the left" never
    hinges on a pixel.
    """
    anchor = objects[rng.integers(len(objects))]
    for k in rng.permutation(len(_QUERY_KINDS)):
        kind = _QUERY_KINDS[k]
        base = {a: getattr(anchor, a) for a in kind if a not in ("horizontal", "vertical")}
        positional = [a for a in kind if a in ("horizontal", "vertical")]
        if positional:
            axis = positional[0]
            if any(getattr(o, axis) is None for o in objects if _matches(o, base)):
                continue
            base[axis] = getattr(anchor, axis)
        return base
    return {"color": anchor.color, "shape": anchor.shape}


def draw_sample(
    seed: int, index: int, *, split: str = "train", config: ShapesConfig = ShapesConfig()
) -> tuple[Sample, tuple[np.ndarray, np.ndarray] | None]:
    """Sample ``index`` of the stream ``(seed, split)`` before visual prompt engineering.

    Returns the ``Sample`` (``support`` still ``None``) and, when the sample has a visual prompt, the
    raw support scene ``(image S x S x 3 uint8, mask S x S float32)`` of the same color + shape.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), index]))
    # Drawn only when enabled, so scenes without the curriculum stay exactly as they were.
    twin = config.twin_prob > 0 and rng.random() < config.twin_prob
    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    style = config.style if config.style is not None and rng.random() < config.style.prob else None
    size = config.size if style is None else style.canvas_size(rng)
    image, objects = make_scene(
        rng,
        size,
        max(n_objects, 2) if twin else n_objects,
        twin=twin,
        style=style,
        plain_rotation=config.plain_rotation,
    )
    twins = objects[:2] if twin and len(objects) >= 2 and objects[1].color == objects[0].color else []
    present = {(o.color, o.shape) for o in objects}
    absent = [pair for pair in itertools.product(COLORS, SHAPES) if pair not in present]
    negative = rng.random() < config.negative_prob
    visual = rng.random() < config.visual_prob
    if negative:
        # Drawn only when enabled, so scenes without hard absent prompts stay exactly as they were.
        near = [p for p in absent if p[0] in {c for c, _ in present}]
        if near and config.hard_absent_prob > 0 and rng.random() < config.hard_absent_prob:
            absent = near
        color, shape = absent[rng.integers(len(absent))]
        query = {"color": color, "shape": shape}
    elif visual or twins:
        # A support image conveys color and shape only, so the text names exactly that.
        pool = twins or objects
        anchor = pool[rng.integers(len(pool))]
        query = {"color": anchor.color, "shape": anchor.shape}
    else:
        query = _positive_query(rng, objects)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for obj in objects:
        if _matches(obj, query):
            mask |= obj.coverage
    sample: Sample = {
        "sample_id": f"shapes-{split}-{seed}-{index}",
        "image": image,
        "mask": mask.astype(np.float32),
        "text": phrase_for(query),
        "class_id": NO_CLASS,
        "support": None,
        "support_mask": None,
        "label": category_map(objects, size) if config.category_labels else None,
        "text_weight": 1.0,
        "meta": {
            "query": query,
            "objects": [[o.color, o.shape, o.size, o.horizontal, o.vertical] for o in objects],
        },
    }
    if config.style is not None:  # only in a varied world, so plain streams stay exactly as they were
        sample["meta"]["varied"] = style is not None  # training tells plain scenes apart (distillation)
    if not visual:
        return sample, None
    n_support = int(rng.integers(1, config.max_objects + 1))
    support_image, support_objects = make_scene(
        rng,
        size,
        n_support,
        required=(query["color"], query["shape"]),
        style=style,
        plain_rotation=config.plain_rotation,
    )
    sample["text_weight"] = float(rng.uniform(*config.text_weight_range))
    return sample, (support_image, support_objects[0].coverage.astype(np.float32))


def make_sample(
    seed: int, index: int, *, split: str = "train", config: ShapesConfig = ShapesConfig()
) -> Sample:
    """Sample ``index`` of the stream ``(seed, split)``: always the same for the same arguments.

    ``image`` ``S x S x 3`` uint8, ``mask`` ``S x S`` float32 in {0, 1}, ``text`` (the phrase, no
    template), ``support`` (``s x s x 3`` uint8 visual prompt, or ``None``), ``text_weight``, and
    ``meta`` (the query and the scene's objects, JSON-serialisable).
    """
    sample, support_scene = draw_sample(seed, index, split=split, config=config)
    if support_scene is not None:
        sample["support"] = visual_prompt(
            *support_scene, config.support_size or config.size, config.prompt_style
        )
    return sample


def _png(array: np.ndarray) -> bytes:
    """Lossless PNG bytes of an ``H x W x 3`` uint8 image or an ``H x W`` mask in [0, 1]."""
    if array.ndim == 2:
        return encode_png((array * 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def iter_rows(
    src: Path | None = None,
    split: str = "val",
    *,
    seed: int = 0,
    size: int = 352,
    length: int = 1000,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """Shard rows (``SHARD_FEATURES``) of a fixed shapes split, for ``prepare`` (``src`` is unused).

    Row ``i`` is ``draw_sample(seed, i, split=split)`` with PNG image/mask and the raw support scene in
    ``support_image`` / ``support_mask``, so streaming it through ``PromptPolicy(visual=True)`` and
    prompting the pair at ``size`` (as ``SampleTransform`` does) gives back ``make_sample`` pixel for
    pixel. ``options`` go to ``ShapesConfig``.
    """
    config = ShapesConfig(size=size, **options)
    for index in range(length):
        sample, support_scene = draw_sample(seed, index, split=split, config=config)
        yield make_row(
            sample["sample_id"],
            _png(sample["image"]),
            _png(sample["mask"]),
            text=sample["text"],
            support_image=None if support_scene is None else _png(support_scene[0]),
            support_mask=None if support_scene is None else _png(support_scene[1]),
            meta=sample["meta"],
        )
