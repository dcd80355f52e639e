"""PASCAL-5i and COCO-20i one-shot rows: seeded test episodes, or training pairs, in HSNet's layout.

PASCAL-5i (juhongm999/hsnet ``data/pascal.py`` and README)::

    {src}/VOC2012/JPEGImages/{name}.jpg
    {src}/VOC2012/SegmentationClassAug/{name}.png   mode L: VOC class ids, 0 background, 255 boundary
    {splits}/pascal/{trn,val}/fold{0..3}.txt         lines "{name}__{id:02d}" (VOC id, 1..20)

COCO-20i (hsnet ``data/coco.py``; CLIPSeg ``datasets/coco_wrapper.py`` uses the same files)::

    {src}/{train2014,val2014}/COCO_{split}_{id:012d}.jpg
    {src}/annotations/{train2014,val2014}/COCO_{split}_{id:012d}.png   mode L: class index + 1
    {splits}/coco/{trn,val}/fold{0..3}.pkl            {class index (0..79): ["val2014/COCO_...jpg", ...]}

``{splits}`` is HSNet's ``data/splits`` folder, by default ``{src}/splits``. Test ("val" / "test")
episodes follow HSNet: for PASCAL the query walks the fold's val list (episode ``i`` takes line
``i mod len``), for COCO the class is drawn uniformly and the query at random; the support is another
image of the same class. Training rows are HSNet's training pairs: PASCAL's trn lists of the three other
folds, COCO's ``trn/fold{f}.pkl``. Class ids in rows are the label PNG values (1-based for both).
"""

from __future__ import annotations

import pickle
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from clipseg.data.classes import COCO_CLASSES, N_FOLDS, held_out_classes, voc_prompt_name
from clipseg.data.sample_io import (
    check_size,
    encode_png,
    make_row,
    read_image,
    read_png_array,
    sample_rng,
    seeded_candidates,
)
from clipseg.data.schema import BadSample

BENCHMARKS = ("pascal5i", "coco20i")
Pairs = list[tuple[str, int]]  # (image name, 1-based class id)


# Split files written with numpy keep numpy integers; their reconstructors are harmless.
_NUMPY_SCALARS = frozenset(
    {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}
)


class _SplitUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: a split file from the internet must not run code when read."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_SCALARS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: split files hold only lists and ints"
        )


def read_pascal_list(path: Path) -> Pairs:
    """Lines ``{name}__{id:02d}`` of an HSNet PASCAL split list."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: copy HSNet's data/splits there or pass splits_dir")
    pairs = []
    for line in path.read_text().split():
        name, _, class_id = line.rpartition("__")
        pairs.append((name, int(class_id)))
    return pairs


def read_coco_pickle(path: Path) -> Pairs:
    """(image name, 1-based class id) pairs of an HSNet COCO split pickle (0-based class keys)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: copy HSNet's data/splits there or pass splits_dir")
    with path.open("rb") as f:
        classwise = _SplitUnpickler(f).load()
    return [(str(name), int(index) + 1) for index in sorted(classwise) for name in classwise[index]]


def detect_benchmark(src: Path) -> str:
    """ "pascal5i" for a folder holding VOC2012/, "coco20i" for one holding annotations/."""
    if (src / "VOC2012").is_dir():
        return "pascal5i"
    if (src / "annotations").is_dir():
        return "coco20i"
    raise ValueError(
        f"{src}: neither VOC2012/ (PASCAL-5i) nor annotations/ (COCO-20i) found; pass benchmark="
    )


def _layout(
    src: Path, benchmark: str
) -> tuple[Callable[[str], Path], Callable[[str], Path], Callable[[int], str]]:
    """(image path, label path, prompt text) for image names and class ids of ``benchmark``."""
    if benchmark == "pascal5i":
        voc = src / "VOC2012"
        return (
            lambda name: voc / "JPEGImages" / f"{name}.jpg",
            lambda name: voc / "SegmentationClassAug" / f"{name}.png",
            voc_prompt_name,
        )
    return (
        lambda name: src / name,
        lambda name: src / "annotations" / f"{name.rsplit('.', 1)[0]}.png",
        lambda class_id: COCO_CLASSES[class_id - 1],
    )


def split_pairs(splits: Path, benchmark: str, training: bool, fold: int) -> Pairs:
    """HSNet's (image, class) pairs for a fold: test pairs of its held-out classes, or its training pairs."""
    if benchmark == "pascal5i":
        if training:  # HSNet trains fold f on the trn lists of every other fold
            folds = [f for f in range(N_FOLDS) if f != fold]
            return [p for f in folds for p in read_pascal_list(splits / "pascal" / "trn" / f"fold{f}.txt")]
        return read_pascal_list(splits / "pascal" / "val" / f"fold{fold}.txt")
    pairs = read_coco_pickle(splits / "coco" / ("trn" if training else "val") / f"fold{fold}.pkl")
    held_out = {COCO_CLASSES.index(name) + 1 for name in held_out_classes("coco20i", fold)}
    return [(name, c) for name, c in pairs if (c in held_out) != training]


def iter_rows(
    src: Path,
    split: str,
    *,
    benchmark: str | None = None,
    fold: int = 0,
    n_episodes: int = 1000,
    seed: int = 0,
    splits_dir: Path | None = None,
) -> Iterator[dict[str, Any] | BadSample]:
    """One-shot rows of ``benchmark`` (detected from ``src`` when None) for ``fold``.

    ``split`` "val" / "test": ``n_episodes`` seeded episodes over the fold's held-out classes (the same
    episodes for the same seed). ``split`` "train": one row per training (image, class) pair with a
    seeded support. Each row: query ``image`` + ``mask`` (pixels of the class), ``support_image`` +
    ``support_mask`` of another image of the class, ``class_id``, ``text`` = class name.
    """
    src = Path(src)
    benchmark = benchmark or detect_benchmark(src)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"few-shot split must be 'train', 'val' or 'test', got {split!r}")
    if fold not in range(N_FOLDS):
        raise ValueError(f"fold must be in 0..{N_FOLDS - 1}, got {fold}")
    training = split == "train"
    image_path, label_path, class_text = _layout(src, benchmark)
    pairs = split_pairs(Path(splits_dir) if splits_dir else src / "splits", benchmark, training, fold)
    if not pairs:
        raise ValueError(f"{benchmark} fold {fold} ({split}): the split lists name no images")
    pools: dict[int, list[str]] = defaultdict(list)
    for name, class_id in pairs:
        pools[class_id].append(name)

    @lru_cache(maxsize=64)
    def load(name: str, class_id: int) -> tuple[bytes, bytes]:
        """Image bytes and the class's mask PNG; raises ``BadSample`` (reason names the file)."""
        data, size = read_image(image_path(name), name)
        label = read_png_array(label_path(name), name, "label")
        check_size(name, f"label {label_path(name)}", label.shape[::-1], size)
        present = label == class_id
        if not present.any():
            raise BadSample(name, f"class {class_id} does not occur in label {label_path(name)}")
        return data, encode_png(present)

    if training:
        # HSNet's "{name}__{id:02d}" line, with COCO's folder and extension dropped
        plan = (
            (f"{PurePosixPath(name).stem}__{c:02d}", name, c, sample_rng(seed, name, c)) for name, c in pairs
        )
    else:
        plan = _episodes(benchmark, pairs, pools, fold, n_episodes, seed)
    for sample_id, query, class_id, rng in plan:
        try:
            image, mask = load(query, class_id)
        except BadSample as bad:
            yield BadSample(sample_id, bad.reason)
            continue
        support = None
        for name in seeded_candidates(rng, pools[class_id], allowed=lambda n, q=query: n != q):
            try:
                support = (name, *load(name, class_id))
                break
            except BadSample:
                continue  # a broken support image is reported when it is a query; try another
        if support is None:
            yield BadSample(sample_id, f"no other readable image of class {class_id} to serve as support")
            continue
        yield make_row(
            sample_id,
            image,
            mask,
            text=class_text(class_id),
            class_id=class_id,
            support_image=support[1],
            support_mask=support[2],
            meta={"benchmark": benchmark, "fold": fold, "query": query, "support": support[0]},
        )


def _episodes(
    benchmark: str, pairs: Pairs, pools: dict[int, list[str]], fold: int, n_episodes: int, seed: int
) -> Iterator[tuple[str, str, int, random.Random]]:
    """(sample id, query name, class id, generator for the support) of each test episode, HSNet's way."""
    classes = sorted(c for c, names in pools.items() if len(names) > 1)
    if benchmark == "coco20i" and not classes:
        raise ValueError(f"coco20i fold {fold}: no held-out class has two images to form an episode")
    for i in range(n_episodes):
        rng = sample_rng(seed, benchmark, fold, i)
        if benchmark == "pascal5i":
            query, class_id = pairs[i % len(pairs)]
        else:
            class_id = rng.choice(classes)
            query = rng.choice(pools[class_id])
        yield f"{benchmark}-fold{fold}-episode{i:04d}", query, class_id, rng
