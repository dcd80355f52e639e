"""Class vocabularies of the benchmarks, their held-out class sets and phrase matching against them.

Class ids follow the label PNGs of each dataset: PASCAL VOC ids are 1..20 (0 = background, 255 = ignore)
and ``VOC_CLASSES[i]`` has id ``i + 1``; COCO-20i masks (HSNet's) use the contiguous 80-class index plus
one, so ``COCO_CLASSES[i]`` has id ``i + 1`` as well.

Held-out sets:

* PASCAL-5i (PFENet / HSNet): fold ``f`` holds out VOC ids ``5f+1 .. 5f+5``.
* COCO-20i (HSNet ``data/coco.py``, ``build_class_ids``): fold ``f`` holds out the interleaved 0-based
  indices ``f, f+4, f+8, ..., f+76``.
* PASCAL zero-shot (ZS3Net / JoEm ``get_unseen_idx``, used by CLIPSeg ``datasets/pascal_zeroshot.py``):
  unseen classes grow by pairs in the order cow/motorbike, aeroplane/sofa, cat/tv, train/bottle,
  chair/potted-plant; "2 unseen" is the first pair, "10 unseen" all five.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle",
    "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Words a text prompt uses for a VOC class (VOC's own names are glued words, not English).
VOC_PROMPT_NAMES: dict[str, str] = {
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "tvmonitor": "tv monitor",
}

PASCAL_ZERO_SHOT_PAIRS: tuple[tuple[str, str], ...] = (
    ("cow", "motorbike"),
    ("aeroplane", "sofa"),
    ("cat", "tvmonitor"),
    ("train", "bottle"),
    ("chair", "pottedplant"),
)

N_FOLDS = 4

# Equivalent words per concept; the first entry is the VOC name where there is one. A class name found
# anywhere in a group (VOC or COCO spelling) stands for the whole group, so removing "tvmonitor" also
# removes phrases saying "television" and COCO's "tv".
_CONCEPTS: tuple[tuple[str, ...], ...] = (
    ("aeroplane", "airplane", "plane", "jet", "airliner", "aircraft", "jetliner"),
    ("bicycle", "bike", "cycle"),
    ("bird", "parrot", "duck", "eagle", "owl", "seagull", "gull", "pigeon", "sparrow", "swan", "goose",
     "geese", "chicken", "hen", "penguin", "crow"),
    ("boat", "ship", "vessel", "sailboat", "yacht", "canoe", "kayak", "ferry", "raft"),
    ("bottle",),
    ("bus", "minibus"),
    ("car", "taxi", "cab", "suv", "jeep", "sedan", "minivan", "van"),
    ("cat", "kitten", "kitty"),
    ("chair", "armchair", "highchair"),
    ("cow", "cattle", "bull", "calf", "calves", "ox", "oxen"),
    ("diningtable", "dining table", "table", "kitchen table"),
    ("dog", "puppy", "pup", "doggy"),
    ("horse", "pony", "foal", "stallion", "mare"),
    ("motorbike", "motorcycle", "scooter", "moped"),
    ("person", "people", "human", "man", "men", "woman", "women", "child", "children", "kid", "boy",
     "girl", "baby", "toddler", "infant", "lady", "gentleman", "guy", "player", "skier", "surfer",
     "skateboarder", "pedestrian"),
    ("pottedplant", "potted plant", "pot plant", "houseplant", "house plant", "flowerpot", "flower pot",
     "plant pot"),
    ("sheep", "lamb", "ram", "ewe"),
    ("sofa", "couch", "settee", "loveseat"),
    ("train", "locomotive", "railcar", "tram"),
    ("tvmonitor", "tv monitor", "tv", "television", "monitor", "tv screen"),
)  # fmt: skip


def synonyms(class_name: str) -> tuple[str, ...]:
    """All words that name ``class_name`` (itself included): its concept group, or just itself."""
    key = class_name.lower().strip()
    for group in _CONCEPTS:
        if key in group:
            return group
    return (key,)


def _term_pattern(term: str) -> str:
    """Regex for ``term`` and its regular plural; spaces inside match any run of spaces or hyphens."""
    words = term.split()
    last = re.escape(words[-1])
    if re.search(r"[^aeiou]y$", words[-1]):
        last = f"(?:{last}|{re.escape(words[-1][:-1])}ies)"
    else:
        last = f"{last}(?:s|es)?"
    return r"[\s-]+".join([*map(re.escape, words[:-1]), last])


@lru_cache(maxsize=256)
def _matcher(class_names: tuple[str, ...]) -> re.Pattern[str]:
    terms = sorted({t for name in class_names for t in synonyms(name)}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(_term_pattern(t) for t in terms) + r")\b", re.IGNORECASE)


def phrase_mentions_any(phrase: str, class_names: Iterable[str]) -> bool:
    """True when ``phrase`` names one of ``class_names`` or a synonym, as a whole word, singular or plural.

    >>> phrase_mentions_any("two black cows on grass", ["cow"])
    True
    >>> phrase_mentions_any("scowling face", ["cow"])
    False
    """
    names = tuple(sorted({n.lower().strip() for n in class_names}))
    if not names:
        return False
    return _matcher(names).search(phrase) is not None


def held_out_classes(protocol: str, fold: int = 0) -> list[str]:
    """Class names held out (unseen in training) by ``protocol``.

    ``protocol`` is "pascal5i" or "coco20i" (with ``fold`` in 0..3) or "pascal-zeroshot-N" with N in
    {2, 4, 6, 8, 10} unseen classes (``fold`` must stay 0: the zero-shot protocol has no folds).
    """
    if protocol in ("pascal5i", "coco20i"):
        if fold not in range(N_FOLDS):
            raise ValueError(f"{protocol}: fold must be in 0..{N_FOLDS - 1}, got {fold}")
        if protocol == "pascal5i":
            per_fold = len(VOC_CLASSES) // N_FOLDS
            return list(VOC_CLASSES[fold * per_fold : (fold + 1) * per_fold])
        return list(COCO_CLASSES[fold::N_FOLDS])
    match = re.fullmatch(r"pascal-zeroshot-(\d+)", protocol)
    if match:
        n_unseen = int(match.group(1))
        if n_unseen % 2 or not 2 <= n_unseen <= 2 * len(PASCAL_ZERO_SHOT_PAIRS):
            raise ValueError(f"{protocol}: the number of unseen classes must be one of 2, 4, 6, 8, 10")
        if fold != 0:
            raise ValueError(f"{protocol} has no folds; got fold={fold}")
        return [name for pair in PASCAL_ZERO_SHOT_PAIRS[: n_unseen // 2] for name in pair]
    raise ValueError(
        f"unknown protocol {protocol!r}; expected 'pascal5i', 'coco20i' or 'pascal-zeroshot-<2|4|6|8|10>'"
    )


def voc_prompt_name(class_id: int) -> str:
    """The text prompt for VOC class id ``class_id`` (1..20), e.g. 16 -> "potted plant"."""
    name = VOC_CLASSES[class_id - 1]
    return VOC_PROMPT_NAMES.get(name, name)
