"""The Gradio page: an image, text prompts, an optional image prompt, options; an overlay, mask files,
presence and instance count per prompt, and the label map of all prompts.

Every run goes through the server's ``Batcher``, so page users and API clients share one model and
are batched together. The page loads nothing from other hosts (system fonts, no analytics, no
share links): it works on a machine without internet.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from clipseg.core.prompts import Prompt
from clipseg.inference.inputs import Job
from clipseg.inference.overlay import overlay
from clipseg.inference.postprocess import COMBINE_MODES, PostProcess, postprocess, remove_negatives
from clipseg.inference.presence import Calibration, prompt_presence
from clipseg.inference.refine import REFINE_MODES
from clipseg.inference.segment import segmentation
from clipseg.inference.writers import labels_image, mask_to_gray, slug
from clipseg.serve.api import UploadLimits
from clipseg.serve.batcher import Batcher, Busy

ASSETS = Path(__file__).resolve().parent.parent / "assets"
EXAMPLES = [[str(ASSETS / "example.png"), "red square\nblue circle"]]
# System fonts only: Gradio's default theme would fetch its fonts from Google's servers.
THEME = gr.themes.Default(
    font=("ui-sans-serif", "system-ui", "sans-serif"), font_mono=("ui-monospace", "monospace")
)


def theme_arguments(*, mounting: bool) -> dict[str, Any]:
    """``{"theme": THEME}`` for the one call that takes it, else ``{}``: Gradio 6 sets the theme where
    the app is mounted (``mount_gradio_app``; its ``Blocks`` warns and defers it), Gradio 5 only in
    the ``Blocks`` constructor."""
    at_mount = "theme" in inspect.signature(gr.mount_gradio_app).parameters
    return {"theme": THEME} if mounting == at_mount else {}


def editor_mask(value: dict | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The support image of an ``ImageEditor`` value and the painted mask (``H x W`` float32), if any."""
    if not value or value.get("background") is None:
        return None, None
    background = np.asarray(value["background"])
    painted = [np.asarray(layer)[..., 3] > 0 for layer in value.get("layers") or [] if layer is not None]
    mask = np.any(painted, axis=0).astype(np.float32) if painted else None
    return background[..., :3], (mask if mask is not None and mask.any() else None)


def job_from_inputs(
    image: np.ndarray | None,
    prompts_text: str,
    support: dict | None,
    support_mask: np.ndarray | None,
    options: dict[str, Any],
    *,
    limits: UploadLimits,
) -> tuple[Job, list[str]]:
    """The ``Job`` the page's inputs describe, and the label of each prompt; ``gr.Error`` for bad inputs."""
    if image is None:
        raise gr.Error("image: upload or paste an image first")
    if image.shape[0] * image.shape[1] > limits.max_pixels:
        raise gr.Error(
            f"image: {image.shape[1]}x{image.shape[0]} pixels is over the limit of {limits.max_pixels:,}"
        )
    texts = [line.strip() for line in prompts_text.splitlines() if line.strip()]
    prompts: list[Prompt | str] = list(texts)
    labels = list(texts)
    support_image, painted = editor_mask(support)
    if support_image is not None:
        mask = support_mask[..., 0] if support_mask is not None and support_mask.ndim == 3 else support_mask
        prompts.append(
            Prompt(image=support_image, mask=mask if mask is not None else painted, name="image prompt")
        )
        labels.append("image prompt")
    if not prompts:
        raise gr.Error("prompts: type at least one prompt (one per line) or give an image prompt")
    if len(prompts) > limits.max_prompts:
        raise gr.Error(f"prompts: {len(prompts)} prompts, at most {limits.max_prompts}")
    refine, tiles = options.pop("refine"), options.pop("tiles")
    negative = tuple(line.strip() for line in options.pop("negative").splitlines() if line.strip())
    threshold = options.pop("threshold") or None  # 0 on the slider: soft masks
    try:
        post = PostProcess(threshold=threshold, negative=negative, **options)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    return Job(image=image, prompts=prompts, postprocess=post, refine=refine, tiles=tiles), labels


SUMMARY_HEADERS = ["prompt", "presence", "instances"]


def page_summary(
    probs: np.ndarray,
    negatives: np.ndarray,
    labels: list[str],
    calibration: Calibration | None,
    options: PostProcess,
    image: np.ndarray | None = None,
    pooled: np.ndarray | None = None,
) -> tuple[list[list], Image.Image]:
    """The table rows ``[label, presence, instance count]`` of ``N x H x W`` prompt probabilities and
    the label map (palette image, in the overlay's legend colours for ``image``) of all prompts;
    ``M x H x W`` negatives are removed first, the page's threshold (0.5 for soft masks) and
    min_area apply. ``pooled``: the decoder's ``N x 3R`` summary of the prompts (a presence head's)."""
    cut = options.cut
    # Soft still: only the negatives' pixels are zeroed, at the cut the masks use.
    kept = remove_negatives(probs, negatives, cut)
    per_prompt = replace(options, combine="none")  # a row per prompt, also when the masks are combined
    # As every path reads presence (prompt_presence), from the probabilities already freed of negatives.
    scores = prompt_presence(kept, None, per_prompt, calibration, pooled)
    found = segmentation(kept, calibration, threshold=cut, min_area=options.min_area, scores=scores)
    counts = np.bincount([i.prompt for i in found.instances], minlength=len(probs))
    rows = [[label, round(float(p), 3), int(c)] for label, p, c in zip(labels, found.presence, counts)]
    return rows, labels_image(kept, cut, labels, image)


# Mask files live this long: Gradio copies them into its own cache when the answer goes out.
KEEP_FILES_S = 3600


def fresh_folder(root: Path, *, keep_s: float = KEEP_FILES_S) -> Path:
    """A new folder under ``root`` for one answer's files; folders older than ``keep_s`` are removed
    (a server that runs for weeks must not fill its disk)."""
    cutoff = time.time() - keep_s
    for old in root.iterdir():
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def build_blocks(batcher: Batcher, limits: UploadLimits, files_dir: Path) -> gr.Blocks:
    """The page, running every request through ``batcher``; mask files are written under ``files_dir``."""

    def segment(image, prompts_text, support, support_mask, threshold, negative, combine, erode,
                min_area, fill_holes, dilate, feather, refine, tiles):  # fmt: skip
        options = {
            "threshold": threshold, "negative": negative or "", "combine": combine, "erode": int(erode),
            "min_area": int(min_area), "fill_holes": bool(fill_holes), "dilate": int(dilate),
            "feather": int(feather), "refine": refine, "tiles": bool(tiles),
        }  # fmt: skip
        job, labels = job_from_inputs(
            image, prompts_text or "", support, support_mask, options, limits=limits
        )
        # Probabilities come back whole (negatives after the prompts): presence and the label map
        # read them; the page's post-processing runs here.
        raw = replace(job, prompts=[*job.prompts, *job.postprocess.negative], postprocess=None)
        try:
            future = batcher.submit(raw)
            probs = future.result(timeout=batcher.limits.timeout_s)
        except Busy as err:  # a full queue: said on the page, not a silent failure (nor a traceback)
            raise gr.Error(str(err), title="Server busy", print_exception=False) from None
        except FutureTimeout:
            future.cancel()  # dropped from its batch if its forward has not started
            message = f"no answer within {batcher.limits.timeout_s:g} s; try again later"
            raise gr.Error(message, title="Server busy", print_exception=False) from None
        except ValueError as err:  # a bad prompt (e.g. an all-black mask): the message names it
            raise gr.Error(str(err)) from None
        count = len(job.prompts)
        masks = postprocess(probs[:count], probs[count:], job.postprocess)
        pooled = None if future.pooled is None else future.pooled[:count]
        summary, label_image = page_summary(
            probs[:count],
            probs[count:],
            labels,
            batcher.predictor.calibration,
            job.postprocess,
            image,
            pooled,
        )
        labels = job.postprocess.labels(labels)
        shown = overlay(image, masks, labels, threshold=job.postprocess.threshold)
        grays = [Image.fromarray(mask_to_gray(mask)) for mask in masks]  # shown and saved
        folder = fresh_folder(files_dir)
        files = []
        for i, (label, gray) in enumerate(zip(labels, grays)):
            path = folder / f"{i}_{slug(label)}.png"
            gray.save(path)
            files.append(str(path))
        return shown, list(zip(grays, labels)), files, summary, label_image

    # delete_cache: Gradio's copies of uploads and answers older than KEEP_FILES_S go, checked hourly.
    blocks = gr.Blocks(
        title="clipseg",
        analytics_enabled=False,
        delete_cache=(3600, KEEP_FILES_S),
        **theme_arguments(mounting=False),
    )
    with blocks:
        gr.Markdown(
            f"## clipseg · `{batcher.predictor.name}`\nSegment an image from text prompts or an image prompt."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    label="image", type="numpy", sources=["upload", "clipboard"], elem_id="image"
                )
                prompts = gr.Textbox(label="text prompts, one per line", lines=3, elem_id="prompts")
                with gr.Accordion("image prompt (optional)", open=False):
                    support = gr.ImageEditor(
                        label="support image: paint the object (or upload its mask below)",
                        type="numpy", sources=["upload", "clipboard"], layers=False,
                        brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"), elem_id="support",
                    )  # fmt: skip
                    support_mask = gr.Image(label="its mask (white = object)", type="numpy", image_mode="L")
                threshold = gr.Slider(0, 0.95, value=0, step=0.05, label="threshold (0 = soft masks)")
                with gr.Accordion("post-processing and refinement", open=False):
                    negative = gr.Textbox(label="negative prompts, one per line (removed from every mask)")
                    combine = gr.Dropdown(list(COMBINE_MODES), value="none", label="combine the masks")
                    erode = gr.Number(0, label="erode (px)", precision=0, minimum=0)
                    min_area = gr.Number(0, label="drop regions under (px)", precision=0, minimum=0)
                    fill_holes = gr.Checkbox(label="fill holes")
                    dilate = gr.Number(0, label="dilate (px)", precision=0, minimum=0)
                    feather = gr.Number(0, label="feather (px)", precision=0, minimum=0)
                    refine = gr.Radio(
                        list(REFINE_MODES), value="none", label="refine along the image's edges"
                    )
                    tiles = gr.Checkbox(label="tiles: detail from full-resolution windows (large images)")
                run = gr.Button("Segment", variant="primary", elem_id="run")
            with gr.Column():
                shown = gr.Image(
                    label="overlay", type="pil", format="png", elem_id="overlay", interactive=False
                )
                gallery = gr.Gallery(
                    label="masks", format="png", elem_id="masks", columns=4, height=280, object_fit="contain"
                )
                files = gr.File(label="mask files (PNG)", file_count="multiple", elem_id="downloads")
                summary = gr.Dataframe(
                    headers=SUMMARY_HEADERS, label="presence (probability the object is there) and instances",
                    elem_id="presence", interactive=False,
                )  # fmt: skip
                label_map = gr.Image(
                    label="label map (one colour per prompt)", type="pil", format="png", elem_id="labels",
                    interactive=False,
                )  # fmt: skip
        gr.Examples(EXAMPLES, inputs=[image, prompts], label="examples (bundled images)")
        inputs = [image, prompts, support, support_mask, threshold, negative, combine, erode, min_area,
                  fill_holes, dilate, feather, refine, tiles]  # fmt: skip
        outputs = [shown, gallery, files, summary, label_map]
        run.click(segment, inputs, outputs, concurrency_limit=batcher.limits.max_images)
    return blocks
