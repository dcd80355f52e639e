"""Presence, instances and label maps (``clipseg.inference.segment`` / ``presence``) on hand-made maps."""

import numpy as np
import pytest

from clipseg.inference.presence import Calibration, fit_calibration, presence
from clipseg.inference.segment import find_instances, label_map, segmentation


def disk(shape: tuple[int, int], center: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_two_touching_disks_are_two_instances_whose_boxes_contain_them():
    both = disk((64, 96), (32, 30), 14) | disk((64, 96), (32, 57), 14)
    assert np.count_nonzero(np.diff(both[32].astype(int))) == 2  # one blob along the centre row
    found = find_instances(both.astype(np.float32) * 0.9, 0)
    assert len(found) == 2
    for inst in found:
        x0, y0, x1, y1 = inst.box
        ys, xs = np.nonzero(inst.mask)
        assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1
        assert inst.area == inst.mask.sum() > 400
        assert inst.score == pytest.approx(0.9)
    assert not (found[0].mask & found[1].mask).any()
    assert (found[0].mask | found[1].mask).sum() == both.sum()


def test_one_rectangle_or_disk_stays_one_instance_and_min_area_drops_fragments():
    prob = np.zeros((64, 96), np.float32)
    prob[10:30, 10:70] = 0.8  # an elongated bar: a ridge of distance maxima, one object
    prob[disk((64, 96), (48, 80), 10)] = 0.7
    prob[60:62, 2:4] = 0.9  # a 4-pixel fragment
    assert len(find_instances(prob, 3)) == 3
    kept = find_instances(prob, 3, min_area=10)
    assert len(kept) == 2 and {i.prompt for i in kept} == {3}


@pytest.mark.parametrize("radius", [10, 17])
def test_a_slightly_smeared_disk_stays_one_instance(radius):
    # Two discs 2 px apart: a round blob whose distance transform has two separate top pixels (a
    # plain local-maximum rule cut it in two); its neck is no neck, so it is one object.
    blob = disk((64, 64), (32, 32), radius) | disk((64, 64), (33, 34), radius)
    assert len(find_instances(blob.astype(np.float32), 0)) == 1


def test_label_map_against_hand_made_probabilities():
    probs = np.zeros((2, 4, 4), np.float32)
    probs[0, :, :2] = 0.9
    probs[1, :, 1:3] = 0.95  # wins column 1 over prompt 0
    probs[1, 3, 3] = 0.4  # under the threshold: background
    expected = np.array([[1, 2, 2, 0]] * 3 + [[1, 2, 2, 0]], np.int32)
    labels = label_map(probs, 0.5)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected)


def _scene(present: bool, rng: np.random.Generator) -> np.ndarray:
    prob = rng.uniform(0, 0.2, (48, 48)).astype(np.float32)
    if present:
        prob[disk((48, 48), tuple(rng.integers(12, 36, 2)), 8)] = rng.uniform(0.6, 0.95)
    else:
        prob[rng.integers(48), rng.integers(48)] = rng.uniform(0.5, 0.8)  # one stray confident pixel
    return prob


def test_calibrated_presence_separates_absent_from_present_prompts():
    rng = np.random.default_rng(0)
    labels = [bool(i % 2) for i in range(80)]
    calibration = fit_calibration([_scene(y, rng) for y in labels], labels)
    calibration = Calibration.from_json(calibration.to_json())
    absent, present = _scene(False, rng), _scene(True, rng)
    scores = presence(np.stack([absent, present]), calibration)
    assert scores[0] < 0.5 < scores[1]
    raw = presence(np.stack([absent, present]), None)
    assert raw[0] >= 0.5  # the stray pixel fools the uncalibrated maximum


def test_low_presence_prompt_gets_no_instances_nor_labels():
    probs = np.zeros((2, 32, 32), np.float32)
    probs[0, 4:12, 4:12] = 0.9
    probs[1, 20:28, 20:28] = 0.55
    result = segmentation(probs, None, min_presence=0.6)
    assert [i.prompt for i in result.instances] == [0]
    assert set(np.unique(result.labels)) == {0, 1}
    assert not result.calibrated


def test_shipped_model_says_present_for_a_drawn_object_and_absent_for_another(recwarn):
    from clipseg.data.shapes.scenes import COLORS, SHAPES, make_scene
    from clipseg.zoo import load_model

    predictor = load_model("shapes-tiny", device="cpu")
    image, _ = make_scene(np.random.default_rng(3), 128, 1, required=("red", "circle"))
    absent = next(f"{c} {s}" for c in COLORS for s in SHAPES if (c, s) != ("red", "circle"))
    result = predictor.segment(image, ["red circle", absent])
    assert result.calibrated and not recwarn.list  # shapes-tiny ships its calibration: no warning
    assert result.presence[0] > 0.5 > result.presence[1]
    assert [i.prompt for i in result.instances] == [0]
    assert set(np.unique(result.labels)) == {0, 1}
