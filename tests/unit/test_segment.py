"""Presence, instances and label maps (``clipseg.inference.segment`` / ``presence``) on hand-made maps."""

import json

import numpy as np
import pytest

from clipseg.inference.presence import Calibration, fit_calibration, presence, presence_features
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


# The shipped shapes-tiny calibration as written before the presence head (commit ddcc724).
OLD_CALIBRATION = (
    '{"features": ["logit_max", "logit_top_mean", "area_above_half"], "weights": [1.5114499272272728, '
    '1.621394726872983, 1.034395288982208], "bias": 3.1357922495296853, "mean": [4.89820688158092, '
    '3.960301065873096, 0.03407257080078125], "scale": [9.569815626823463, 9.108088568871484, '
    "0.03626522353182008]}"
)


def test_a_calibration_written_before_the_head_still_loads_and_scores_from_the_map():
    old = Calibration.from_json(OLD_CALIBRATION)
    assert old.head is None
    rng = np.random.default_rng(1)
    probs = np.stack([_scene(True, rng), _scene(False, rng)])
    pooled = rng.normal(size=(2, 96))  # a backend that pools: ignored without a head
    np.testing.assert_array_equal(presence(probs, old, pooled), presence(probs, old))
    stored = json.loads(OLD_CALIBRATION)  # scored as before: the logistic on the map's 3 features
    z = (presence_features(probs) - stored["mean"]) / stored["scale"] @ stored["weights"] + stored["bias"]
    np.testing.assert_allclose(presence(probs, old), 1 / (1 + np.exp(-z)))


def test_a_head_round_trips_through_json_that_older_readers_still_read():
    rng = np.random.default_rng(2)
    labels = [bool(i % 2) for i in range(60)]
    maps = [_scene(True, rng) for _ in labels]  # every map paints an object: hard negatives all
    # A pooled summary that knows the answer where the map cannot: the head must lean on it.
    pooled = [np.array([1.0 if y else -1.0, 0.0]) + rng.normal(0, 0.3, 2) for y in labels]
    calibration = fit_calibration(maps, labels, pooled=pooled)
    assert calibration.head is not None and len(calibration.head.weights) == 3 + 2
    again = Calibration.from_json(calibration.to_json())
    assert again == calibration
    # The map-only part sits where readers without heads look for it (``OLD_CALIBRATION``'s keys).
    stored = json.loads(calibration.to_json())
    assert {k: stored[k] for k in json.loads(OLD_CALIBRATION)} == json.loads(
        Calibration(calibration.base).to_json()
    )
    probs = np.stack([_scene(True, rng), _scene(True, rng)])
    summary = np.array([[1.0, 0.0], [-1.0, 0.0]])  # the second painted map is a hard negative
    assert presence(probs, again, summary)[1] < 0.5 < presence(probs, again, summary)[0]
    with pytest.raises(ValueError, match="10 features, the calibration was fitted on 5"):
        presence(probs, again, np.zeros((2, 7)))


def test_the_presence_head_says_absent_for_a_missing_shape_in_a_colour_the_scene_has():
    """One object per scene, one scene per colour and shape; the second prompt names the next shape in
    the object's colour ("red square" beside a red circle). shapes-tiny paints the object for some of
    them, so their maps look present; the head on the decoder's summary (``predict_pooled``) tells
    most of those apart (not all: on the blue-square scene both judge "blue triangle" present)."""
    from clipseg.data.shapes.scenes import COLORS, SHAPES, make_scene
    from clipseg.zoo import load_model

    predictor = load_model("shapes-tiny", device="cpu")
    assert predictor.calibration.head is not None
    head_right, map_right = [], []
    for index, (color, shape) in enumerate((c, s) for c in COLORS for s in SHAPES):
        other = SHAPES[(SHAPES.index(shape) + 1) % len(SHAPES)]
        image, _ = make_scene(np.random.default_rng(index), 128, 1, required=(color, shape))
        prompts = [f"{color} {shape}", f"{color} {other}"]
        head = predictor.segment(image, prompts).presence
        probs, pooled = predictor.predict_pooled(image, prompts)
        np.testing.assert_allclose(presence(probs, predictor.calibration, pooled), head)
        alone = presence(probs, predictor.calibration)  # the map-only fallback
        head_right.append(bool(head[0] > 0.5 > head[1]))
        map_right.append(bool(alone[0] > 0.5 > alone[1]))
    assert sum(head_right) > sum(map_right)
    # The scenes whose map fools the map-only calibration and that the head gets right.
    assert [i for i, (h, m) in enumerate(zip(head_right, map_right)) if h and not m] == [4, 9, 12]


def test_every_path_that_reports_presence_gives_what_segment_gives():
    """Bulk masking (``clipseg predict``, ray), the serve batcher (API: ``presence`` of the job's
    probabilities and ``JobFuture.pooled``) and the page's table all read the head, on a scene whose
    "green triangle" map alone looks present (a green square only)."""
    from clipseg.data.shapes.scenes import make_scene
    from clipseg.inference.bulk import BulkMasker
    from clipseg.inference.inputs import Job
    from clipseg.inference.postprocess import PostProcess
    from clipseg.serve.app import page_summary
    from clipseg.serve.batcher import Batcher
    from clipseg.zoo import load_model

    predictor = load_model("shapes-tiny", device="cpu")
    image, _ = make_scene(np.random.default_rng(4), 128, 1, required=("green", "square"))
    prompts = ["green square", "green triangle", "red circle"]
    want = predictor.segment(image, prompts).presence
    bulk = BulkMasker(predictor, prompts).mask_images([image])[0].presences
    np.testing.assert_allclose(bulk, want, atol=1e-6)
    batcher = Batcher(predictor)
    try:
        future = batcher.submit(Job(image=image, prompts=prompts))
        probs = future.result(60)
    finally:
        batcher.close()
    np.testing.assert_allclose(presence(probs, predictor.calibration, future.pooled), want, atol=1e-6)
    rows, _ = page_summary(
        probs, probs[:0], prompts, predictor.calibration, PostProcess(), image, future.pooled
    )
    np.testing.assert_allclose([row[1] for row in rows], want, atol=1e-3)
    assert want[0] > 0.5 > want[1]


def test_the_probability_only_calls_do_not_compute_the_decoder_summary(monkeypatch):
    """``predict``, ``predict_batch`` / ``predict_arrays`` and ``predict_each`` hand back probabilities
    only, so they decode without the summary even when the calibration has a head; the ``*_pooled``
    calls that presence reads still ask for it."""
    from clipseg.data.shapes.scenes import make_scene
    from clipseg.inference.inputs import Job
    from clipseg.zoo import load_model

    predictor = load_model("shapes-tiny", device="cpu")
    assert predictor.calibration.head is not None
    image, _ = make_scene(np.random.default_rng(0), 128, 2)
    asked = []
    real = predictor.backend.decode_pooled
    monkeypatch.setattr(predictor.backend, "decode_pooled", lambda *a: asked.append(1) or real(*a))
    predictor.predict(image, ["red circle"])
    predictor.predict_batch([image], ["red circle"])
    predictor.predict_each([Job(image=image, prompts=["red circle"])])
    assert asked == []
    conditionals = predictor.embed_prompts(["red circle"])
    assert predictor.predict_arrays_pooled([image], conditionals)[0][1] is not None
    assert predictor.predict_each_pooled([Job(image=image, prompts=["red circle"])])[0][1] is not None
    assert len(asked) == 2
