"""Class vocabularies, held-out sets of each protocol and phrase matching for class removal."""

from __future__ import annotations

import pytest

from clipseg.data.classes import (
    COCO_CLASSES,
    VOC_CLASSES,
    held_out_classes,
    phrase_mentions_any,
    synonyms,
    voc_prompt_name,
)


def test_vocabularies():
    assert len(VOC_CLASSES) == 20 and len(set(VOC_CLASSES)) == 20
    assert len(COCO_CLASSES) == 80 and len(set(COCO_CLASSES)) == 80
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[-1] == "tvmonitor"
    assert COCO_CLASSES[0] == "person" and COCO_CLASSES[-1] == "toothbrush"


@pytest.mark.parametrize("protocol, size, total", [("pascal5i", 5, 20), ("coco20i", 20, 80)])
def test_folds_partition_the_classes(protocol, size, total):
    folds = [held_out_classes(protocol, f) for f in range(4)]
    assert all(len(fold) == size for fold in folds)
    assert len({c for fold in folds for c in fold}) == total


def test_fold_conventions():
    # PASCAL-5i: contiguous VOC ids 5f+1..5f+5
    assert held_out_classes("pascal5i", 1) == ["bus", "car", "cat", "chair", "cow"]
    # COCO-20i (HSNet): interleaved 0-based indices f, f+4, ...
    fold1 = held_out_classes("coco20i", 1)
    assert fold1[:3] == ["bicycle", "bus", "traffic light"]
    assert [COCO_CLASSES.index(c) for c in fold1] == list(range(1, 80, 4))


def test_zero_shot_unseen_classes_follow_zs3net():
    # JoEm get_unseen_idx: 2 -> [10, 14]; 10 -> [1, 5, 8, 9, 10, 14, 16, 18, 19, 20] (VOC ids)
    def ids(names):
        return sorted(VOC_CLASSES.index(n) + 1 for n in names)

    assert held_out_classes("pascal-zeroshot-2") == ["cow", "motorbike"]
    assert ids(held_out_classes("pascal-zeroshot-4")) == [1, 10, 14, 18]
    assert ids(held_out_classes("pascal-zeroshot-10")) == [1, 5, 8, 9, 10, 14, 16, 18, 19, 20]


@pytest.mark.parametrize(
    "protocol, fold",
    [("pascal5i", 4), ("coco20i", -1), ("pascal-zeroshot-3", 0), ("pascal-zeroshot-12", 0),
     ("pascal-zeroshot-2", 1), ("lvis", 0)],
)  # fmt: skip
def test_bad_protocol_or_fold(protocol, fold):
    with pytest.raises(ValueError, match=r"protocol|fold|unseen"):
        held_out_classes(protocol, fold)


@pytest.mark.parametrize(
    "phrase, classes",
    [
        ("two black cows on grass", ["cow"]),
        ("Cattle grazing", ["cow"]),
        ("the potted-plants near the door", ["pottedplant"]),
        ("green potted plant", ["potted plant"]),
        ("television on the wall", ["tvmonitor"]),
        ("old TV", ["tv"]),
        ("three women walking", ["person"]),
        ("children playing", ["person"]),
        ("fluffy puppies", ["dog"]),
        ("white jet in the sky", ["aeroplane"]),
        ("parked buses", ["bus"]),
        ("brown couch", ["sofa"]),
        ("red motorcycle", ["motorbike"]),
        ("a dining table", ["diningtable"]),
    ],
)
def test_phrase_mentions_class_or_synonym(phrase, classes):
    assert phrase_mentions_any(phrase, classes)


@pytest.mark.parametrize(
    "phrase, classes",
    [
        ("scowling face", ["cow"]),
        ("catalog on shelf", ["cat"]),
        ("planet", ["aeroplane"]),
        ("carpet", ["car"]),
        ("plant in garden", ["pottedplant"]),  # a plant is not a potted plant
        ("red car", []),
        ("tree", ["cow", "person", "tvmonitor"]),
    ],
)
def test_phrase_does_not_mention(phrase, classes):
    assert not phrase_mentions_any(phrase, classes)


def test_synonyms_and_prompt_names():
    assert {"airplane", "plane", "jet"} <= set(synonyms("aeroplane"))
    assert synonyms("airplane") == synonyms("aeroplane")  # COCO and VOC spellings share a group
    assert synonyms("giraffe") == ("giraffe",)
    assert voc_prompt_name(16) == "potted plant" and voc_prompt_name(1) == "aeroplane"
