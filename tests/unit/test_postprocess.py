"""Each post-processing option against a small example worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from clipseg.inference.postprocess import FrameSmoother, PostProcess, postprocess


def grid(rows: str) -> np.ndarray:
    """``"..#/.##"`` -> a bool array (``#`` set); rows separated by ``/``."""
    return np.array([[c == "#" for c in row] for row in rows.split("/")])


def run(mask: np.ndarray, **options) -> np.ndarray:
    return postprocess(mask[None].astype(np.float32), options=PostProcess(**options))[0]


def test_defaults_leave_probabilities_unchanged():
    probs = np.random.default_rng(0).random((2, 3, 4), dtype=np.float32)
    np.testing.assert_array_equal(postprocess(probs), probs)


def test_negative_removes_its_region_from_every_positive():
    positives = np.array([[[0.9, 0.8], [0.7, 0.2]], [[0.3, 0.6], [0.9, 0.9]]], dtype=np.float32)
    negative = np.array([[[0.6, 0.1], [0.4, 0.9]]], dtype=np.float32)  # >= 0.5 at (0,0) and (1,1)
    out = postprocess(positives, negative, PostProcess(negative=("x",)))
    np.testing.assert_array_equal(out, np.float32([[[0, 0.8], [0.7, 0]], [[0, 0.6], [0.9, 0]]]))
    # with --threshold 0.65 the negative only counts at (1,1), and masks are binary
    out = postprocess(positives, negative, PostProcess(negative=("x",), threshold=0.65))
    np.testing.assert_array_equal(out, [[[1, 1], [1, 0]], [[0, 0], [1, 0]]])


@pytest.mark.parametrize(("mode", "expected"), [("union", [[0.9, 0.6]]), ("intersection", [[0.3, 0.2]])])
def test_combine(mode, expected):
    probs = np.array([[[0.9, 0.2]], [[0.3, 0.6]]], dtype=np.float32)
    out = postprocess(probs, options=PostProcess(combine=mode))
    np.testing.assert_array_equal(out, np.array([expected], dtype=np.float32))
    assert PostProcess(combine=mode).labels(["a", "b"]) == ["a | b" if mode == "union" else "a & b"]


def test_threshold_binarises():
    np.testing.assert_array_equal(run(np.array([[0.2, 0.5, 0.7]]), threshold=0.6), [[0, 0, 1]])


def test_dilate_grows_by_euclidean_distance():
    dot = grid("...../...../..#../...../.....")
    np.testing.assert_array_equal(run(dot, dilate=1), grid("...../..#../.###./..#../....."))
    # radius 2 also reaches the diagonal neighbours (distance 1.41) but not (2, 2) away (2.83)
    np.testing.assert_array_equal(run(dot, dilate=2), grid("..#../.###./#####/.###./..#.."))


def test_erode_shrinks_but_keeps_edges_on_the_image_border():
    block = grid("......./.#####./.#####./.#####./.#####./.#####./.......")
    np.testing.assert_array_equal(
        run(block, erode=1), grid("......./......./..###../..###../..###../......./.......")
    )
    at_border = grid("###./###./###./....")
    np.testing.assert_array_equal(run(at_border, erode=1), grid("##../##../..../...."))


def test_min_area_drops_small_8_connected_components():
    mask = grid("##.../##.../...#./....#/#....")  # sizes: 4, 2 (diagonal pair), 1
    np.testing.assert_array_equal(run(mask, min_area=2), grid("##.../##.../...#./....#/....."))
    np.testing.assert_array_equal(run(mask, min_area=3), grid("##.../##.../...../...../....."))


def test_fill_holes():
    ring = grid("...../.###./.#.#./.###./.....")
    np.testing.assert_array_equal(run(ring, fill_holes=True), grid("...../.###./.###./.###./....."))


def test_feather_is_a_gaussian_reaching_px_pixels():
    step = np.array([[0, 0, 1, 1, 1, 1]] * 3, dtype=bool)
    out = run(step, feather=2)  # sigma 1, taps -2..2: weights 0.1353, 0.6065, 1, 0.6065, 0.1353 (sum 2.4837)
    w0, w1, w2 = 1.0, np.exp(-0.5), np.exp(-2.0)
    total = w0 + 2 * w1 + 2 * w2
    expected = [w2 / total, (w1 + w2) / total, (w0 + w1 + w2) / total, 1 - w2 / total, 1.0, 1.0]
    np.testing.assert_allclose(out[1], expected, atol=1e-6)
    assert out.dtype == np.float32 and np.all((out > 0) & (out <= 1))


def test_documented_order_erode_before_dilate():
    # a 1-pixel speck and a 3x3 block: erode 1 then dilate 1 (opening) drops the speck, keeps the block
    mask = grid("#....../......./...###./...###./...###./.......")
    out = run(mask, erode=1, dilate=1)
    np.testing.assert_array_equal(out, grid("......./......./....#../...###./....#../......."))


def test_morphology_without_threshold_cuts_at_one_half():
    probs = np.array([[0.4, 0.6, 0.6, 0.4]], dtype=np.float32)
    np.testing.assert_array_equal(run(probs, fill_holes=True), [[0, 1, 1, 0]])


def test_frame_smoother_averages_neighbours_and_streams():
    smoother = FrameSmoother(1)
    frames = [np.full((1, 1, 1), v, dtype=np.float32) for v in (0.0, 3.0, 6.0, 9.0)]
    out = []
    for i, frame in enumerate(frames):
        ready = smoother.push(i, frame)
        assert len(ready) == (0 if i == 0 else 1)  # one frame of delay
        out += ready
    out += smoother.flush()
    assert [i for i, _ in out] == [0, 1, 2, 3]
    np.testing.assert_allclose([float(p[0, 0, 0]) for _, p in out], [1.5, 3.0, 6.0, 7.5])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"combine": "xor"}, "combine"),
        ({"dilate": -1}, "dilate"),
        ({"min_area": -3}, "min-area"),
        ({"negative": (" ",)}, "negative"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        PostProcess(**options)
