"""Bulk masking: ``BulkMasker(predictor, prompts, options)`` masks images and videos, batched across them.

Inputs are decoded in background threads (``sources.decode``) while the predictor works on the
previous batch; prompts (and negative prompts) are encoded once, when the masker is made.
``iter_predict`` streams ``(source, masks)`` without writing anything; ``outcomes`` writes each
input's files through ``writers`` and says how it ended (what every engine runs: this process in
``predict_folder``, each ``clipseg.ray`` actor on its share); ``predict_folder`` is the local
engine: ``runs.BulkRun`` (plan, resume-skip, progress, summary) around ``outcomes``. The predictor
is only asked for probabilities (``embed_prompts``, ``predict_arrays_pooled``); post-processing, presence
and writing happen here. This module does not touch torch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipseg.core.images import ImageError
from clipseg.core.prompts import PromptLike
from clipseg.inference.postprocess import FrameSmoother, postprocess
from clipseg.inference.predictor import Predictor
from clipseg.inference.presence import prompt_presence
from clipseg.inference.runs import BulkRun, BulkSummary, MaskOptions, Outcome, gather_inputs
from clipseg.inference.sources import Decoded, Event, Finished, Input, decode
from clipseg.inference.writers import (
    INSTANCES_FILE,
    Layout,
    VideoWriter,
    coco_record,
    write_frame,
    write_image_part,
)

__all__ = ["BulkMasker", "BulkSummary", "MaskOptions", "Masked", "Outcome", "Source"]


@dataclass(frozen=True)
class Source:
    """Where a streamed result comes from: an image file, or frame ``frame`` of a video."""

    path: Path
    frame: int | None = None


@dataclass(frozen=True)
class Masked:
    """One image's result: ``masks`` ``K x H x W`` float32 after post-processing, and per mask its
    ``score`` (highest probability of its prompt(s) anywhere) and ``presence`` (``inference.presence``)."""

    masks: np.ndarray
    scores: list[float]
    presences: list[float]


Result = tuple[Decoded, Masked] | tuple[Finished, None]
# One image's ``N x H x W`` probabilities and the decoder's ``N x 3R`` summary (None without a presence head).
Predicted = tuple[np.ndarray, np.ndarray | None]


class BulkMasker:
    """Masks for many inputs with one predictor, one list of prompts and one set of ``MaskOptions``.

    Args:
        predictor: the model (``clipseg.load_model``).
        prompts: text, support images or ``Prompt``s; encoded once here, with the negatives.
        options: post-processing (threshold included), refinement, smoothing, batch size, threads.
    """

    def __init__(
        self, predictor: Predictor, prompts: Sequence[PromptLike], options: MaskOptions | None = None
    ) -> None:
        self.predictor, self.prompts = predictor, list(prompts)
        self.options = options or MaskOptions()
        predictor.check_refine(self.options.refine)
        self._conditionals = predictor.embed_prompts([*self.prompts, *self.options.postprocess.negative])

    def mask_images(self, images: Sequence[np.ndarray]) -> list[Masked]:
        """``Masked`` for each ``H x W x 3`` uint8 image (no smoothing: images are not frames)."""
        return [self._masked(*p) for p in self._predict(images)]

    def _predict(self, images: Sequence[np.ndarray]) -> list[Predicted]:
        options = self.options
        return self.predictor.predict_arrays_pooled(
            images,
            self._conditionals,
            batch_size=max(len(images), 1),
            refine=options.refine,
            tiles=options.tiles,
        )

    def _masked(self, probs: np.ndarray, pooled: np.ndarray | None = None) -> Masked:
        """Post-process ``N x H x W`` probabilities (prompts, then negatives; ``pooled``: the decoder's
        summary of each, for a presence head); a mask whose presence is under ``min_presence`` is emptied."""
        count, options = len(self.prompts), self.options.postprocess
        masks = postprocess(probs[:count], probs[count:], options)
        peaks = probs[:count].reshape(count, -1).max(axis=1)
        found = prompt_presence(
            probs[:count],
            probs[count:],
            options,
            self.predictor.calibration,
            None if pooled is None else pooled[:count],
        )
        if len(masks) < count:  # combined into one mask: its prompts' highest
            peaks = peaks.max(keepdims=True)
        masks[found < self.options.min_presence] = 0.0
        return Masked(masks, [float(p) for p in peaks], [float(p) for p in found])

    def results(self, inputs: Sequence[Input]) -> Iterator[Result]:
        """Events of ``sources.decode`` in order, each frame with its ``Masked``."""
        events = decode(inputs, workers=self.options.workers)
        for event, predicted in _smoothed(
            _predicted(self._predict, events, self.options.batch_size), self.options.smooth
        ):
            yield (event, None) if predicted is None else (event, self._masked(*predicted))

    def iter_predict(
        self,
        sources: Sequence[str | Path] | str | Path,
        *,
        on_error: Callable[[Path, str], None] | None = None,
    ) -> Iterator[tuple[Source, np.ndarray]]:
        """Stream ``(source, masks)`` for files, folders (recursive), globs and every frame of videos.

        ``masks`` is ``K x H x W`` float32 at the input's resolution (post-processed as the options
        say; the default ``PostProcess`` gives the probabilities). An unreadable input raises
        ``ImageError`` naming it, unless ``on_error(path, message)`` is given (then the stream goes on).
        """
        for event, masked in self.results(gather_inputs(sources)):
            if masked is not None:
                yield Source(event.input.path, event.index if event.input.is_video else None), masked.masks
            elif event.error is not None:
                if on_error is None:
                    raise ImageError(event.error)
                on_error(event.input.path, event.error)

    def outcomes(self, layout: Layout, inputs: Sequence[Input]) -> Iterator[Outcome]:
        """Mask ``inputs`` and write their files in ``layout``: one ``Outcome`` per input, as each ends.

        A bad input ends in an ``Outcome`` with its error and leaves no file; the others go on.
        """
        workers = self.options.workers
        video: VideoWriter | None = None
        frames: list[tuple[list[float], list[float]]] = []  # the video's (scores, presences) per frame
        inflight: deque[tuple[Input, Future]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipseg-write") as pool:
            for event, masked in self.results(inputs):
                item = event.input
                if masked is not None and item.is_video:
                    if video is None:
                        video, frames = VideoWriter(layout, item, fps=event.fps or 25.0), []
                    video.add(event.index, event.image, masked.masks, masked.scores)
                    frames.append((masked.scores, masked.presences))
                elif masked is not None:
                    while len(inflight) >= 2 * workers:  # bounded: decoded images are not piled up here
                        yield _written(*inflight.popleft())
                    inflight.append((item, pool.submit(write_image, layout, item, event.image, masked)))
                elif event.error is not None or (item.is_video and video is None):
                    if video is not None:
                        video.abort()
                    yield Outcome(item, error=event.error or f"{item.path}: no frames in the video")
                elif video is not None:
                    video.finish()
                    yield Outcome(item, video_entry(layout, item, video.final, frames))
                if isinstance(event, Finished):
                    video = None
            while inflight:
                yield _written(*inflight.popleft())

    def predict_folder(
        self,
        sources: Sequence[str | Path] | str | Path,
        *,
        out: str | Path,
        formats: Sequence[str] = ("png", "overlay"),
        overwrite: bool = False,
        video_output: str = "frames",
        progress: bool | None = None,
        on_error: Callable[[Path, str], None] | None = None,
    ) -> BulkSummary:
        """Mask files, folders, globs and videos into ``out`` in this process (``runs.BulkRun.plan``:
        layout, resume-skip, collisions). A bad input is reported (``on_error(path, message)``;
        default: an ``error:`` line on stderr), the run goes on and the summary lists it under
        ``failed``. ``progress`` None shows the bar on a terminal only."""
        return BulkRun.plan(
            self.predictor.name,
            self.prompts,
            self.options,
            sources,
            out=out,
            formats=formats,
            overwrite=overwrite,
            video_output=video_output,
            progress=progress,
            on_error=on_error,
        ).run(self.outcomes)


def _written(item: Input, write: Future) -> Outcome:
    return Outcome(item, write.result())


def _predicted(
    predict: Callable[[Sequence[np.ndarray]], list[Predicted]], events: Iterator[Event], batch_size: int
) -> Iterator[tuple[Event, Predicted | None]]:
    """Pair each ``Decoded`` with its ``N x H x W`` probabilities (and decoder summary), batching frames across inputs."""
    pending: list[Event] = []
    frames = 0
    for event in events:
        pending.append(event)
        frames += isinstance(event, Decoded)
        if frames == batch_size:
            yield from _run_batch(predict, pending)
            pending, frames = [], 0
    yield from _run_batch(predict, pending)


def _run_batch(
    predict: Callable[[Sequence[np.ndarray]], list[Predicted]], pending: list[Event]
) -> Iterator[tuple[Event, Predicted | None]]:
    images = [e.image for e in pending if isinstance(e, Decoded)]
    results = iter(predict(images) if images else [])
    for event in pending:
        yield event, next(results) if isinstance(event, Decoded) else None


def _smoothed(
    stream: Iterator[tuple[Event, Predicted | None]], radius: int
) -> Iterator[tuple[Event, Predicted | None]]:
    """Video frames' probabilities averaged over ``radius`` neighbours on each side (``FrameSmoother``;
    each frame keeps its own decoder summary); images unchanged."""
    smoother = FrameSmoother(radius)
    for event, predicted in stream:
        if not radius or not event.input.is_video:
            yield event, predicted
        elif isinstance(event, Decoded):
            probs, pooled = predicted
            yield from _unpacked(smoother.push((event, pooled), probs))
        else:
            held = _unpacked(smoother.flush())
            if event.error is None:
                yield from held
            yield event, None


def _unpacked(
    frames: list[tuple[tuple[Event, np.ndarray | None], np.ndarray]],
) -> list[tuple[Event, Predicted]]:
    return [(event, (probs, pooled)) for (event, pooled), probs in frames]


def write_image(layout: Layout, item: Input, image: np.ndarray, masked: Masked) -> dict:
    """Write one image's outputs; returns its summary entry (an item of ``clipseg predict --json``)."""
    masks = masked.masks
    folder = layout.root / item.key.parent
    folder.mkdir(parents=True, exist_ok=True)
    files = write_frame(layout, folder, item.key.name, image, masks)
    if layout.coco_file:
        instances = layout.coco_file == INSTANCES_FILE
        record = coco_record(
            str(item.name), masks, masked.scores, layout.cut, frame=None, instances=instances
        )
        write_image_part(layout, item, record)
    height, width = masks.shape[1:]
    entry: dict = {"image": str(item.path), "size": [width, height], "masks": []}
    for i, (label, mask, score, present) in enumerate(
        zip(layout.labels, masks, masked.scores, masked.presences)
    ):
        info = {
            "prompt": label,
            "max_prob": score,
            "presence": round(present, 6),
            "area": float((mask >= layout.cut).mean()),
        }
        if "png" in files:
            info["file"] = str(files["png"][i])
        entry["masks"].append(info)
    if "overlay" in files:
        entry["overlay"] = str(files["overlay"][0])
    return entry


def video_entry(
    layout: Layout, item: Input, folder: Path, frames: Sequence[tuple[list[float], list[float]]]
) -> dict:
    """A finished video's summary entry (an item of ``clipseg predict --json``'s ``videos``) from each
    frame's ``(scores, presences)`` (``Masked``'s): per mask its presence in every frame
    (``presence_by_frame``, in frame order), the highest of them (``presence``: whether the object
    shows up anywhere in the video), their mean and the highest probability (``max_prob``)."""
    entry: dict = {"video": str(item.path), "folder": str(folder), "frames": len(frames), "masks": []}
    for k, label in enumerate(layout.labels):
        found = [presences[k] for _, presences in frames]
        entry["masks"].append(
            {
                "prompt": label,
                "max_prob": max(scores[k] for scores, _ in frames),
                "presence": round(max(found), 6),
                "presence_mean": round(sum(found) / len(found), 6),
                "presence_by_frame": [round(p, 6) for p in found],
            }
        )
    return entry
