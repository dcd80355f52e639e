"""Window layout, blending and gating of tiled inference (``clipseg.inference.tiles``)."""

from __future__ import annotations

import numpy as np

from clipseg.inference.tiles import Level, combine, levels, needs_tiles, stitch, tile_boxes, window_starts


def test_windows_cover_the_image_with_the_asked_overlap():
    for length, window in [(512, 96), (97, 96), (1000, 352), (353, 352)]:
        starts = window_starts(length, window, overlap=0.25)
        assert starts[0] == 0 and starts[-1] == length - window
        gaps = np.diff(starts)
        assert (gaps > 0).all() and (gaps <= 0.75 * window).all()  # overlap >= 25 %
    assert window_starts(80, 96) == [0]


def test_tiles_only_when_both_sides_exceed_the_window():
    assert needs_tiles(512, 400, 96)
    assert not needs_tiles(512, 96, 96) and not needs_tiles(64, 64, 96)


def test_stitching_constant_tiles_gives_the_constant_and_each_tile_lands_in_place():
    boxes = tile_boxes(100, 130, 40)
    tiles = np.full((len(boxes), 2, 40, 40), 0.3, np.float32)
    tiles[:, 1] = 0.7
    out = stitch(tiles, boxes, 100, 130)
    assert out.shape == (2, 100, 130)
    np.testing.assert_allclose(out[0], 0.3, atol=1e-6)
    np.testing.assert_allclose(out[1], 0.7, atol=1e-6)
    # a tile of ones at one corner only: the corner pixel (covered by that tile alone) is 1
    single = np.zeros((len(boxes), 1, 40, 40), np.float32)
    single[0] = 1.0
    assert stitch(single, boxes, 100, 130)[0, 0, 0] == 1.0
    # one window at a time (the predictor's generator) blends the same
    np.testing.assert_array_equal(stitch((tile for tile in tiles), boxes, 100, 130), out)


def test_combine_keeps_tile_detail_only_near_the_global_mask():
    global_probs = np.zeros((2, 50, 50), np.float32)
    global_probs[:, 20:30, 20:30] = 0.9
    global_probs[1] *= 0.5  # the second prompt: marked nowhere (max 0.45) by the whole-image view
    tile_probs = np.zeros((2, 50, 50), np.float32)
    tile_probs[:, 18:32, 18:32] = 0.8  # the same object, with sharper and wider edges
    tile_probs[:, 0:5, 40:50] = 1.0  # a lookalike far away that the whole-image view rules out
    out = combine(global_probs, tile_probs, gate_radius=3, window=40)
    assert out[0, 19, 19] == np.float32(0.8)  # within the widened global mask: the tile's value
    assert out[0, 2, 45] == 0.0 and out[0, 10, 10] == 0.0  # far from it: removed
    np.testing.assert_array_equal(out[1], tile_probs[1])  # no context for prompt 2: the tiles alone


def test_a_region_larger_than_a_window_is_never_lost_and_a_small_one_stays_the_tiles_to_trim():
    """Issue 36 defect 3: windows inside a large object see no shape and erased it."""
    global_probs = np.zeros((1, 100, 100), np.float32)
    global_probs[0, 10:60, 10:60] = 0.9  # 50 px: larger than the 40 px windows
    global_probs[0, 80:90, 80:90] = 0.9  # 10 px: a quarter of a window, which reads it whole
    tile_probs = np.zeros((1, 100, 100), np.float32)
    tile_probs[0, 10:60, 10:14] = 0.95  # the windows mark only the large region's left edge
    out = combine(global_probs, tile_probs, gate_radius=2, window=40)
    np.testing.assert_array_equal(
        out[0, 10:60, 14:60], np.float32(0.9)
    )  # the whole-image view, where tiles saw nothing
    np.testing.assert_array_equal(out[0, 10:60, 10:14], np.float32(0.95))  # and tiles add where they see more
    assert out[0, 80:90, 80:90].max() == 0.0  # the small region the windows rejected is dropped
    assert out[0, 70:78, 20:40].max() == 0.0  # nothing appears where neither view marks anything


def test_a_region_too_large_for_a_window_to_read_keeps_the_coarser_view_inside_and_the_tiles_edges():
    """Issue 35: a 128 px model's window painted a square filling a third of it at about 0.5."""
    global_probs = np.zeros((1, 80, 80), np.float32)
    global_probs[0, 29:51, 29:51] = 0.9  # 22 px, blurred 1 px wider than the object: > 40 / 4
    tile_probs = np.zeros((1, 80, 80), np.float32)
    tile_probs[0, 30:50, 30:50] = 0.4  # the window outlines the object but reads its inside weakly
    out = combine(global_probs, tile_probs, gate_radius=6, window=40)  # coarser blur: 6 / 3 = 2 px
    np.testing.assert_array_equal(out[0, 31:49, 31:49], np.float32(0.9))  # inside: the coarser view
    assert out[0, 30, 40] == np.float32(0.4) and out[0, 29, 40] == 0.0  # its blurred edge: the tiles'


def test_the_pyramid_doubles_windows_from_the_input_size_while_both_sides_exceed_them():
    # coarse to fine; each gated by the view before it: the whole image, then the next coarser windows
    assert levels(1024, 800, 128) == [Level(512, 24), Level(256, 12), Level(128, 6)]
    assert levels(300, 200, 96) == [Level(192, 9), Level(96, 6)]
    assert levels(128, 500, 128) == [] and levels(90, 120, 96) == []
