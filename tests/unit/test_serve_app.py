"""The page's inputs become one ``Job``: text prompts one per line, an image prompt with its painted or
uploaded mask, post-processing options; bad inputs end in one message (issue 18)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from clipseg.core.prompts import Prompt
from clipseg.serve.api import UploadLimits
from clipseg.serve.app import editor_mask, job_from_inputs

LIMITS = UploadLimits(max_pixels=10_000)
IMAGE = np.zeros((40, 50, 3), np.uint8)
NO_OPTIONS = {
    "threshold": 0, "negative": "", "combine": "none", "erode": 0, "min_area": 0, "fill_holes": False,
    "dilate": 0, "feather": 0, "refine": "none", "tiles": False,
}  # fmt: skip


def painted(mask: np.ndarray) -> dict:
    """An ``ImageEditor`` value: a support image and one layer with ``mask`` painted in white."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = 255
    return {"background": np.full((*mask.shape, 4), 90, np.uint8), "layers": [layer], "composite": None}


def test_text_prompts_are_one_per_line_and_options_reach_postprocess():
    options = {**NO_OPTIONS, "threshold": 0.3, "negative": "sky\n\n", "dilate": 2, "refine": "guided"}
    job, labels = job_from_inputs(IMAGE, "red square\n  \nblue circle \n", None, None, options, limits=LIMITS)
    assert list(job.prompts) == labels == ["red square", "blue circle"]
    assert (job.postprocess.threshold, job.postprocess.negative, job.postprocess.dilate) == (0.3, ("sky",), 2)
    assert job.refine == "guided"
    soft, _ = job_from_inputs(IMAGE, "x", None, None, dict(NO_OPTIONS), limits=LIMITS)
    assert soft.postprocess.threshold is None  # 0 on the slider: soft masks


def test_an_image_prompt_takes_the_painted_mask_or_the_uploaded_one():
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:15] = True
    support, found = editor_mask(painted(mask))
    assert support.shape == (20, 30, 3) and np.array_equal(found, mask.astype(np.float32))
    job, labels = job_from_inputs(IMAGE, "", painted(mask), None, dict(NO_OPTIONS), limits=LIMITS)
    (prompt,) = job.prompts
    assert isinstance(prompt, Prompt) and labels == ["image prompt"]
    assert np.array_equal(prompt.mask, mask.astype(np.float32))
    uploaded = np.zeros((20, 30), np.uint8)
    uploaded[0:4, 0:4] = 255
    job, _ = job_from_inputs(IMAGE, "", painted(mask), uploaded, dict(NO_OPTIONS), limits=LIMITS)
    assert np.array_equal(job.prompts[0].mask, uploaded)
    assert editor_mask(None) == (None, None)
    assert editor_mask({"background": np.zeros((4, 4, 4), np.uint8), "layers": []})[1] is None


@pytest.mark.parametrize(
    ("image", "prompts", "options", "message"),
    [
        (None, "x", {}, "upload or paste"),
        (np.zeros((200, 200, 3), np.uint8), "x", {}, "over the limit"),
        (IMAGE, " \n ", {}, "at least one prompt"),
        (IMAGE, "x", {"erode": -1}, "erode"),
    ],
)
def test_bad_inputs_end_in_one_message(image, prompts, options, message):
    with pytest.raises(gr.Error, match=message):
        job_from_inputs(image, prompts, None, None, {**NO_OPTIONS, **options}, limits=LIMITS)


def test_answer_folders_older_than_the_keep_time_are_removed(tmp_path):
    import os

    from clipseg.serve.app import fresh_folder

    old, recent = fresh_folder(tmp_path), fresh_folder(tmp_path)
    os.utime(old, (0, 0))
    new = fresh_folder(tmp_path, keep_s=60)
    assert sorted(tmp_path.iterdir()) == sorted([recent, new])


def test_the_app_builds_with_the_installed_gradios_api_without_warnings():
    """Gradio 6 takes the theme where the app is mounted and warns when ``Blocks`` gets it (as 5 wants)."""
    import warnings

    import clipseg
    from clipseg.serve.server import create_app

    predictor = clipseg.load_model("shapes-tiny", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        app = create_app(predictor)
    app.state.batcher.close()


def test_the_page_summary_gives_presence_instances_and_the_label_map_respecting_negatives():
    from clipseg.inference.overlay import legend_colours
    from clipseg.inference.postprocess import PostProcess
    from clipseg.serve.app import page_summary

    names = ["red square", "blue circle"]
    probs = np.zeros((2, 40, 60), np.float32)
    probs[0, 5:15, 5:15] = probs[0, 25:35, 40:55] = 0.9  # two objects of prompt 0
    probs[1, 20:30, 5:15] = 0.3  # prompt 1: nothing at the cut
    no_negatives = np.zeros((0, 40, 60), np.float32)
    rows, image = page_summary(
        probs, no_negatives, names, None, PostProcess(), np.zeros((40, 60, 3), np.uint8)
    )
    assert rows == [["red square", 0.9, 2], ["blue circle", 0.3, 0]]
    labels = np.asarray(image)
    assert image.mode == "P" and set(np.unique(labels)) == {0, 1}
    assert (labels == 1).sum() == (probs[0] >= 0.5).sum()
    # Each prompt's colour is the one the overlay's legend gives it (not the palette's order).
    palette = image.getpalette()[3:9]
    assert palette == [v for colour in legend_colours(names, np.zeros((40, 60, 3), np.uint8)) for v in colour]
    negative = np.zeros((1, 40, 60), np.float32)
    negative[0, 25:35, 40:55] = 0.8  # removes prompt 0's second object
    rows, image = page_summary(probs, negative, names, None, PostProcess(threshold=0.2))
    assert rows == [["red square", 0.9, 1], ["blue circle", 0.3, 1]]  # the lower cut finds prompt 1's object
    assert (np.asarray(image) == 1).sum() == 100 and (np.asarray(image) == 2).sum() == 100
