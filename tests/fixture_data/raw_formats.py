"""Writers of tiny raw datasets in each dataset's exact on-disk format, with the ground truth they drew.

Every writer lays out a handful of small images (at most 96 px) under ``root`` with the real file names,
folder layout, JSON keys / split lists and PNG modes (see the reader modules in ``clipseg.data`` for the
format references), and returns a truth object. ``bad`` injects broken samples by kind; the truth's
``bad`` dict maps the sample id a reader must report to the kind injected. Deterministic, < 1 s each.
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 (inclusive pixel corners)


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A deterministic ``size`` RGB picture: smooth seeded colour waves (compresses like a photo)."""
    w, h = size
    base = np.random.default_rng(seed).integers(40, 215, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    channels = [base[c] + 35 * np.sin(xx / (4 + c) + yy / (6 + c) + seed) for c in range(3)]
    return Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))


def _write(path: Path, content: Image.Image | bytes | str | object, **save: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Image.Image):
        content.save(path, **save)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))


def rect_mask(size: tuple[int, int], rect: Rect) -> np.ndarray:
    """``H x W`` bool mask of a rectangle polygon as PIL fills it: truncated corners, both ends included."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    mask = np.zeros(size[::-1], dtype=bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def label_map(size: tuple[int, int], objects: Iterable[tuple[int, Rect]]) -> np.ndarray:
    """``H x W`` uint8 class ids: each (class, rect) filled, with a 1-px 255 "boundary" ring as in VOC."""
    label = np.zeros(size[::-1], dtype=np.uint8)
    for class_id, (x0, y0, x1, y1) in objects:
        label[rect_mask(size, (x0 - 1, y0 - 1, x1 + 1, y1 + 1)) & (label == 0)] = 255
        label[rect_mask(size, (x0, y0, x1, y1))] = class_id
    return label


def voc_palette() -> list[int]:
    """The 256-colour palette of VOC's SegmentationClass PNGs (bit-interleaved colour map)."""
    palette = []
    for i in range(256):
        rgb, c = [0, 0, 0], i
        for bit in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - bit)
            c >>= 3
        palette += rgb
    return palette


def _save_label(path: Path, label: np.ndarray, palette: bool) -> None:
    img = Image.fromarray(label, mode="L")
    if palette:
        img = img.convert("P")  # keeps the values as indices
        img.putpalette(voc_palette())
    _write(path, img, format="PNG")


# ----------------------------------------------------------------------------------------------- PhraseCut
PHRASECUT_BAD = ("missing_image", "corrupt_image", "malformed_entry", "out_of_bounds", "size_mismatch")
# sizes as listed in image_data_split.json; image 6 is really 40x30 on disk
_PC_SIZES = {1: (96, 64), 2: (64, 80), 3: (80, 80), 4: (32, 32), 5: (32, 32), 6: (48, 30)}
# task id -> (image id, phrase, instances); an instance is a list of rects, or (x, y) for a one-point polygon
_PC_TASKS: dict[str, tuple[int, str, list]] = {
    "1__1": (1, "red car", [[(10, 10, 30, 25)]]),
    "1__2": (1, "two dogs", [[(40, 30, 50, 40)], [(60, 30, 70, 40)]]),
    "1__3": (1, "window", [[(0, 0, 5, 5)]]),
    "1__4": (1, "window", [[(80.7, 50.2, 95.9, 63.99)]]),  # fractional vertices are truncated
    "2__1": (2, "Red car", [[(5, 5, 20, 20)]]),  # same phrase up to case
    "2__2": (2, "tree", [[(0, 40, 10, 60), (50, 70, 63, 79), (30, 30)]]),  # 3 polygons, one a single point
    "3__1": (3, "red car", [[(20, 20, 60, 40)]]),
    "3__2": (3, "sky", [[(0, 0, 80, 10)]]),  # touches the right border (x == width)
}
_PC_BAD_TASKS = {
    "missing_image": ("4__1", (4, "lamp", [[(1, 1, 5, 5)]])),
    "corrupt_image": ("5__1", (5, "red car", [[(1, 1, 5, 5)]])),
    "malformed_entry": ("1__9", (1, "cloud", 17)),
    "out_of_bounds": ("1__8", (1, "ball", [[(90, 10, 130, 20)]])),
    "size_mismatch": ("6__1", (6, "bench", [[(1, 1, 5, 5)]])),
}


@dataclass
class PhraseCutTruth:
    root: Path  # the VGPhraseCut_v0 folder
    split: str
    masks: dict[str, np.ndarray]  # good task id -> H x W bool
    phrases: dict[str, str]
    image_ids: dict[str, int]
    bad: dict[str, str] = field(default_factory=dict)


def _polygon(shape: tuple) -> list[list[float]]:
    if len(shape) == 2:
        return [list(shape)]
    x0, y0, x1, y1 = shape
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def write_phrasecut(root: Path, *, split: str = "val", bad: Iterable[str] = ()) -> PhraseCutTruth:
    """``root/VGPhraseCut_v0`` with refer_<split>.json, image_data_split.json and images/<id>.jpg."""
    base = Path(root) / "VGPhraseCut_v0"
    tasks, truth = dict(_PC_TASKS), PhraseCutTruth(base, split, {}, {}, {})
    for kind in bad:
        task_id, spec = _PC_BAD_TASKS[kind]
        tasks[task_id] = spec
        truth.bad[task_id] = kind
    used = {image_id for image_id, _, _ in tasks.values()}
    _write(base / "image_data_split.json", [
        {"image_id": i, "coco_id": None, "flickr_id": None, "width": w, "height": h, "split": split,
         "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{i}.jpg"}
        for i, (w, h) in _PC_SIZES.items() if i in used
    ])  # fmt: skip
    for image_id in sorted(used):
        path = base / "images" / f"{image_id}.jpg"
        if image_id == 5:
            _write(path, b"\xff\xd8 this is not a jpeg")
        elif image_id == 6:
            _write(path, photo((40, 30), image_id), quality=90)
        elif image_id != 4:
            _write(path, photo(_PC_SIZES[image_id], image_id), quality=90)
    entries = []
    for n, (task_id, (image_id, phrase, instances)) in enumerate(tasks.items()):
        polygons = (
            instances
            if not isinstance(instances, list)
            else [[_polygon(s) for s in inst] for inst in instances]
        )
        rects = [s for inst in instances for s in inst if len(s) == 4] if isinstance(instances, list) else []
        entries.append({
            "task_id": task_id, "image_id": image_id, "ann_ids": [1000 + n], "phrase": phrase,
            "instance_boxes": [[x0, y0, x1 - x0 + 1, y1 - y0 + 1] for x0, y0, x1, y1 in rects],
            "Polygons": polygons,
            "phrase_structure": {"name": phrase.split()[-1], "attributes": phrase.split()[:-1],
                                 "relation_ids": [], "relation_descriptions": [], "type": "name"},
        })  # fmt: skip
        if task_id not in truth.bad:
            size = _PC_SIZES[image_id]
            truth.masks[task_id] = np.logical_or.reduce([rect_mask(size, r) for r in rects])
            truth.phrases[task_id], truth.image_ids[task_id] = phrase, image_id
    _write(base / f"refer_{split}.json", entries)
    return truth


# ------------------------------------------------------------------------------------ PASCAL-5i, COCO-20i
@dataclass
class FewShotTruth:
    root: Path
    labels: dict[str, np.ndarray]  # image name -> H x W uint8 label map as written
    pairs: dict[tuple[str, int], list[tuple[str, int]]]  # ("trn" | "val", fold) -> [(name, class id)]
    bad: dict[str, str] = field(default_factory=dict)  # image name -> kind


def _scene(n: int, class_id: int, distractor: int) -> tuple[tuple[int, int], list[tuple[int, Rect]]]:
    """Size and objects of the n-th synthetic scene: the class somewhere, a distractor class elsewhere."""
    size = (64 + 8 * (n % 3), 48)
    x = 4 + 7 * (n % 5)
    return size, [(class_id, (x, 6, x + 14, 20 + n % 7)), (distractor, (40, 28, 56, 42))]


FEWSHOT_BAD = ("missing_image", "corrupt_label", "class_absent")
ScenePaths = Callable[[str, int], tuple[str, Path, Path]]  # (split, n) -> (name, image path, label path)


def _few_shot_scenes(
    classes: tuple[int, ...], per_class: int, paths: ScenePaths, distractor: int, bad: Iterable[str]
) -> tuple[dict[str, np.ndarray], dict[tuple[str, int], list[tuple[str, int]]], dict[str, str]]:
    """Write ``per_class`` scenes per class and split ("trn", "val") and broken val lines of ``classes[0]``.

    Returns the label maps by image name, the (name, class) pairs by (split, class) and the broken names.
    """
    labels, pairs, broken = {}, defaultdict(list), {}
    # (split, class listed in the split files, class drawn, broken kind)
    scenes = [(split, c, c, None) for split in ("trn", "val") for c in classes for _ in range(per_class)]
    scenes += [("val", classes[0], distractor if k == "class_absent" else classes[0], k) for k in bad]
    for n, (split, listed, drawn, kind) in enumerate(scenes, start=1):
        name, image_path, label_path = paths(split, n if kind is None else 900000 + n)
        size, objects = _scene(n, drawn, distractor)
        if kind != "missing_image":
            _write(image_path, photo(size, n), quality=90)
        if kind == "corrupt_label":
            _write(label_path, b"not a png")
        else:
            labels[name] = label_map(size, objects)
            _save_label(label_path, labels[name], palette=False)
        pairs[(split, listed)].append((name, listed))
        if kind is not None:
            broken[name] = kind
    return labels, pairs, broken


def write_pascal5i(
    root: Path, *, classes: Iterable[int] = (1, 2, 6, 11, 16), per_class: int = 3, bad: Iterable[str] = ()
) -> FewShotTruth:
    """HSNet's PASCAL-5i layout: VOC2012/JPEGImages, VOC2012/SegmentationClassAug (mode L), splits/pascal.

    ``bad`` takes kinds of ``FEWSHOT_BAD``: each adds a broken val line of the first class.
    """
    voc = Path(root) / "VOC2012"

    def paths(split: str, n: int) -> tuple[str, Path, Path]:
        name = f"2008_{n:06d}"
        return name, voc / "JPEGImages" / f"{name}.jpg", voc / "SegmentationClassAug" / f"{name}.png"

    labels, by_class, broken = _few_shot_scenes(tuple(classes), per_class, paths, 15, tuple(bad))
    by_fold = {(split, fold): [] for split in ("trn", "val") for fold in range(4)}
    for (split, class_id), pairs in by_class.items():
        by_fold[(split, (class_id - 1) // 5)] += pairs
    for (split, fold), pairs in by_fold.items():
        lines = "".join(f"{name}__{c:02d}\n" for name, c in pairs)
        _write(Path(root) / "splits" / "pascal" / split / f"fold{fold}.txt", lines)
    return FewShotTruth(Path(root), labels, by_fold, broken)


def write_coco20i(
    root: Path, *, classes: Iterable[int] = (1, 5, 2, 3), per_class: int = 2, bad: Iterable[str] = ()
) -> FewShotTruth:
    """HSNet's COCO-20i layout: {train,val}2014/*.jpg, annotations/{train,val}2014/*.png, splits/coco/*.pkl.

    ``classes`` are 1-based (the mask value); HSNet's pickles key them 0-based. ``bad`` as for PASCAL.
    """
    root, classes = Path(root), tuple(classes)

    def paths(split: str, n: int) -> tuple[str, Path, Path]:
        sub = "train2014" if split == "trn" else "val2014"
        name = f"{sub}/COCO_{sub}_{n:012d}.jpg"
        return name, root / name, root / "annotations" / sub / f"COCO_{sub}_{n:012d}.png"

    labels, by_class, broken = _few_shot_scenes(classes, per_class, paths, 63, tuple(bad))
    by_fold = {}
    for split in ("trn", "val"):
        for fold in range(4):  # val pickles hold the fold's held-out classes, trn pickles the others
            keep = [c for c in classes if ((c - 1) % 4 == fold) == (split == "val")]
            by_fold[(split, fold)] = [p for c in keep for p in by_class[(split, c)]]
            classwise = {c - 1: [name for name, _ in by_class[(split, c)]] for c in keep}
            _write(root / "splits" / "coco" / split / f"fold{fold}.pkl", pickle.dumps(classwise))
    return FewShotTruth(root, labels, by_fold, broken)


# --------------------------------------------------------------------------------------- PASCAL zero-shot
@dataclass
class ZeroShotTruth:
    root: Path
    labels: dict[str, np.ndarray]  # image id -> H x W uint8 class ids (255 = ignore)
    bad: dict[str, str] = field(default_factory=dict)


_ZS_SCENES = {
    "2007_000033": [(10, (4, 4, 30, 30)), (15, (40, 10, 60, 40))],  # cow (unseen) + person
    "2007_000042": [(14, (10, 10, 50, 40))],  # motorbike (unseen)
    "2007_000061": [(1, (2, 2, 20, 12)), (18, (30, 20, 62, 44))],  # aeroplane + sofa
    "2007_000063": [(12, (8, 8, 24, 24))],  # dog (seen)
}
ZEROSHOT_BAD = ("missing_image", "rgb_label", "invalid_class", "size_mismatch")


def write_pascal_zeroshot(root: Path, *, split: str = "val", bad: Iterable[str] = ()) -> ZeroShotTruth:
    """VOC2012 devkit: ImageSets/Segmentation/<split>.txt, JPEGImages, SegmentationClass (P, VOC palette)."""
    voc = Path(root) / "VOC2012"
    truth = ZeroShotTruth(voc, {})
    scenes = dict(_ZS_SCENES)
    for n, kind in enumerate(bad):
        image_id = f"2007_90000{n}"
        scenes[image_id] = [(40 if kind == "invalid_class" else 12, (5, 5, 20, 20))]
        truth.bad[image_id] = kind
    for n, (image_id, objects) in enumerate(scenes.items()):
        size = (64, 48)
        kind = truth.bad.get(image_id)
        if kind != "missing_image":
            _write(voc / "JPEGImages" / f"{image_id}.jpg", photo(size, n), quality=90)
        label = label_map((48, 40) if kind == "size_mismatch" else size, objects)
        if kind == "rgb_label":
            _write(
                voc / "SegmentationClass" / f"{image_id}.png",
                Image.fromarray(label).convert("RGB"),
                format="PNG",
            )
        else:
            _save_label(voc / "SegmentationClass" / f"{image_id}.png", label, palette=True)
        if kind is None:
            truth.labels[image_id] = label
    _write(voc / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in scenes))
    return truth


# ---------------------------------------------------------------------------------- RefMatte, RefMatte-RW100
@dataclass
class RefMatteTruth:
    root: Path
    split: str
    alphas: dict[str, np.ndarray]  # alpha name -> H x W uint8
    entries: dict[str, dict]  # alpha name -> label entry as written
    eval_index: dict[str, int] | None
    bad: dict[str, str] = field(default_factory=dict)


_RM_ENTITIES = {  # alpha name -> (image name, image size, disc centre, keyword, expressions)
    "rm_0001_0": ("rm_0001", (64, 48), (16, 20), "dog", ["the dog on the left", "a brown dog", "the dog"]),
    "rm_0001_1": ("rm_0001", (64, 48), (46, 24), "cat", ["the cat on the right", "a grey cat", "the cat"]),
    "rm_0002_0": ("rm_0002", (48, 64), (24, 40), "person", ["the person at the bottom", "a woman"]),
}
REFMATTE_BAD = ("missing_image", "size_mismatch", "malformed_entry")


def soft_disc(size: tuple[int, int], centre: tuple[int, int], radius: float = 10.0) -> np.ndarray:
    """``H x W`` uint8 alpha matte: an opaque disc with a 4-px soft edge (values between 0 and 255)."""
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    dist = np.hypot(xx - centre[0], yy - centre[1])
    return (np.clip((radius - dist) / 4 + 0.5, 0, 1) * 255).round().astype(np.uint8)


def write_refmatte(root: Path, *, split: str = "test", bad: Iterable[str] = ()) -> RefMatteTruth:
    """RefMatte ``split`` ({split}/img, {split}/mask, json/refmatte_{split}_label.json) or, for
    ``split="rw100"``, RefMatte_RW_100 (image/, mask/, refmatte_rw100_label.json,
    eval_index_expression.json)."""
    root, rw100 = Path(root), split == "rw100"
    image_dir, alpha_dir = (
        (root / "image", root / "mask") if rw100 else (root / split / "img", root / split / "mask")
    )
    entities = dict(_RM_ENTITIES)
    truth = RefMatteTruth(root, split, {}, {}, {"rm_0001": 1, "rm_0002": 0} if rw100 else None)
    for n, kind in enumerate(bad):
        alpha_name = f"rm_09{n}0_0"
        entities[alpha_name] = (alpha_name[:-2], (40, 40), (20, 20), "lamp", ["the lamp"])
        truth.bad[alpha_name] = kind
    for n, (alpha_name, (image_name, size, centre, keyword, expressions)) in enumerate(entities.items()):
        kind = truth.bad.get(alpha_name)
        if kind != "missing_image":
            _write(image_dir / f"{image_name}.jpg", photo(size, n), quality=90)
        alpha = soft_disc((30, 30) if kind == "size_mismatch" else size, centre)
        _write(alpha_dir / f"{alpha_name}.png", Image.fromarray(alpha, mode="L"), format="PNG")
        entry = {"image_name": image_name, "keyword": keyword, "expressions": expressions}
        truth.entries[alpha_name] = {"image_name": image_name} if kind == "malformed_entry" else entry
        if truth.eval_index is not None:
            truth.eval_index.setdefault(image_name, 0)
        if kind is None:
            truth.alphas[alpha_name] = alpha
    if rw100:
        _write(root / "refmatte_rw100_label.json", truth.entries)
        _write(root / "eval_index_expression.json", truth.eval_index)
    else:
        _write(root / "json" / f"refmatte_{split}_label.json", truth.entries)
    return truth
