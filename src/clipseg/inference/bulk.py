"""Bulk masking: sources → predictor → post-processing → writers, batched across images and videos.

Inputs are decoded in background threads (``sources.decode``) while the predictor works on the
previous batch; prompts (and negative prompts) are encoded once for the whole run. ``iter_predict``
streams ``(source, masks)`` without writing anything; ``predict_folder`` writes the outputs of
``writers`` with a progress bar, skips inputs whose outputs are complete, reports a bad file by name
and goes on. This module does not touch torch: it only calls the predictor's ``check_refine``, ``embed_prompts``
and ``predict_arrays`` (which also refines: ``refine``, ``tiles``).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from clipseg.core.images import ImageError
from clipseg.core.prompts import as_prompt
from clipseg.inference.postprocess import FrameSmoother, PostProcess, postprocess
from clipseg.inference.presence import presence
from clipseg.inference.sources import Decoded, Event, Finished, Input, SourceError, collect_inputs, decode
from clipseg.inference.stamps import run_stamp
from clipseg.inference.writers import (
    INSTANCES_FILE,
    Layout,
    VideoWriter,
    assemble_coco,
    coco_record,
    remove_partials,
    write_frame,
    write_image_part,
    write_legend,
)


@dataclass(frozen=True)
class Source:
    """Where a streamed result comes from: an image file, or frame ``frame`` of a video."""

    path: Path
    frame: int | None = None


@dataclass
class BulkSummary:
    """What a ``predict_folder`` run did; ``entries`` describe the inputs masked in this run."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    coco: Path | None = None
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return (
            f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)} "
            f"({self.seconds:.1f} s, {rate:.2f} inputs/s)"
        )


Result = tuple[Decoded, np.ndarray, list[float], list[float]] | tuple[Finished, None, None, None]


def _results(
    predictor: Any,
    inputs: Sequence[Input],
    prompts: Sequence[Any],
    options: PostProcess,
    *,
    batch_size: int,
    smooth: int,
    workers: int,
    refine: str = "none",
    tiles: bool = False,
    min_presence: float = 0.0,
) -> Iterator[Result]:
    """Events of ``sources.decode`` in order, each frame with its ``K x H x W`` masks, ``K`` scores and
    ``K`` presences.

    A score is the highest probability of the mask's prompt(s) anywhere in the image; a presence is
    ``inference.presence`` of the prompt(s) after the negatives (a combined mask: the highest). A mask
    whose presence is under ``min_presence`` is emptied.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    predictor.check_refine(refine)
    count = len(prompts)
    conditionals = predictor.embed_prompts([*prompts, *options.negative])
    predict = partial(predictor.predict_arrays, conditionals=conditionals, refine=refine, tiles=tiles)
    stream = _smoothed(_predicted(predict, decode(inputs, workers=workers), batch_size), smooth)
    for event, probs in stream:
        if probs is None:
            yield event, None, None, None
            continue
        masks = postprocess(probs[:count], probs[count:], options)
        peaks = probs[:count].reshape(count, -1).max(axis=1)
        kept = postprocess(
            probs[:count], probs[count:], PostProcess(threshold=None, negative=options.negative)
        )
        found = presence(kept, getattr(predictor, "calibration", None))
        if len(masks) < count:
            peaks, found = peaks.max(keepdims=True), found.max(keepdims=True)
        masks[found < min_presence] = 0.0
        yield event, masks, [float(p) for p in peaks], [float(p) for p in found]


def _predicted(
    predict: Callable[..., list[np.ndarray]], events: Iterator[Event], batch_size: int
) -> Iterator[tuple[Event, np.ndarray | None]]:
    """Pair each ``Decoded`` with its ``N x H x W`` probabilities, batching frames across inputs."""
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
    predict: Callable[..., list[np.ndarray]], pending: list[Event]
) -> Iterator[tuple[Event, np.ndarray | None]]:
    images = [e.image for e in pending if isinstance(e, Decoded)]
    probs = iter(predict(images, batch_size=len(images)) if images else [])
    for event in pending:
        yield event, next(probs) if isinstance(event, Decoded) else None


def _smoothed(
    stream: Iterator[tuple[Event, np.ndarray | None]], radius: int
) -> Iterator[tuple[Event, np.ndarray | None]]:
    """Video frames averaged over ``radius`` neighbours on each side (``FrameSmoother``); images unchanged."""
    smoother = FrameSmoother(radius)
    for event, probs in stream:
        if not radius or not event.input.is_video:
            yield event, probs
        elif isinstance(event, Decoded):
            yield from smoother.push(event, probs)
        else:
            held = smoother.flush()
            if event.error is None:
                yield from held
            yield event, None


def _prompt_labels(prompts: Sequence[Any]) -> list[str]:
    return [as_prompt(p).label for p in prompts]


def _inputs(sources: Sequence[str | Path] | str | Path, exclude: Path | None = None) -> list[Input]:
    return collect_inputs([sources] if isinstance(sources, (str, Path)) else sources, exclude=exclude)


def iter_predict(
    predictor: Any,
    sources: Sequence[str | Path] | str | Path,
    prompts: Sequence[Any],
    *,
    postprocess: PostProcess | None = None,
    batch_size: int = 8,
    smooth: int = 0,
    refine: str = "none",
    tiles: bool = False,
    workers: int = 2,
    on_error: Callable[[Path, str], None] | None = None,
) -> Iterator[tuple[Source, np.ndarray]]:
    """Stream ``(source, masks)`` for files, folders (recursive), globs and every frame of videos.

    ``masks`` is ``K x H x W`` float32 at the input's resolution: the probabilities of the ``K``
    prompts, or the post-processed masks with ``postprocess``. ``smooth`` averages video frames
    over that many neighbours on each side; ``refine`` and ``tiles`` as in ``predict_batch``. An
    unreadable input raises ``ImageError`` naming it, unless ``on_error(path, message)`` is given
    (then it is called and the stream goes on).
    """
    options = postprocess or PostProcess()
    inputs = _inputs(sources)
    stream = _results(
        predictor,
        inputs,
        prompts,
        options,
        batch_size=batch_size,
        smooth=smooth,
        workers=workers,
        refine=refine,
        tiles=tiles,
    )
    for event, masks, _, _ in stream:
        if isinstance(event, Decoded):
            yield Source(event.input.path, event.index if event.input.is_video else None), masks
        elif event.error is not None:
            if on_error is None:
                raise ImageError(event.error)
            on_error(event.input.path, event.error)


def predict_folder(
    predictor: Any,
    sources: Sequence[str | Path] | str | Path,
    prompts: Sequence[Any],
    *,
    out: str | Path,
    formats: Sequence[str] = ("png", "overlay"),
    postprocess: PostProcess | None = None,
    overwrite: bool = False,
    batch_size: int = 8,
    smooth: int = 0,
    refine: str = "none",
    tiles: bool = False,
    min_presence: float = 0.0,
    video_output: str = "frames",
    workers: int = 2,
    progress: bool | None = None,
    on_error: Callable[[Path, str], None] | None = None,
) -> BulkSummary:
    """Mask files, folders, globs and videos into ``out`` (layout and names: ``inference.writers``).

    Inputs whose outputs are complete and were made with the same options are skipped unless
    ``overwrite``; files that a run wrote under ``out`` are never taken as inputs. A bad input is reported
    (``on_error(path, message)``; default: an ``error:`` line on stderr) and the run goes on; the
    summary lists it under ``failed``. ``progress`` None shows the bar on a terminal only. A prompt
    whose presence (``inference.presence``) is under ``min_presence`` gets an empty mask. The other
    options are those of ``iter_predict``.
    """
    start = time.perf_counter()
    options = postprocess or PostProcess()
    root = Path(out)
    inputs = _inputs(sources, exclude=root)
    labels = options.labels(_prompt_labels(prompts))
    stamp = run_stamp(
        getattr(predictor, "name", ""),
        prompts,
        options,
        refine=refine,
        tiles=tiles,
        smooth=smooth,
        min_presence=min_presence,
    )
    layout = Layout(
        root=root,
        labels=tuple(labels),
        formats=tuple(formats),
        video_output=video_output,
        cut=options.cut,
        stamp=stamp,
    )
    _refuse_collisions(layout, inputs)
    remove_partials(root)
    todo = [item for item in inputs if overwrite or not layout.is_complete(item)]
    summary = BulkSummary(skipped=len(inputs) - len(todo))
    report = on_error or (lambda path, message: tqdm.write(f"error: {message}", file=sys.stderr))
    failed: set[Path] = set()
    video: VideoWriter | None = None
    bar = tqdm(
        total=len(todo), unit="input", disable=None if progress is None else not progress, file=sys.stderr
    )
    stream = _results(
        predictor,
        todo,
        prompts,
        options,
        batch_size=batch_size,
        smooth=smooth,
        workers=workers,
        refine=refine,
        tiles=tiles,
        min_presence=min_presence,
    )
    with bar, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipseg-write") as pool:
        writes: list[Future] = []
        inflight: deque[Future] = deque()
        for event, masks, scores, found in stream:
            item = event.input
            if isinstance(event, Decoded) and item.is_video:
                video = video or VideoWriter(layout, item, fps=event.fps or 25.0)
                video.add(event.index, event.image, masks, scores)
            elif isinstance(event, Decoded):
                while len(inflight) >= 2 * workers:  # bounded: decoded images are not piled up here
                    inflight.popleft().result()
                writes.append(pool.submit(_write_image, layout, event, masks, scores, found))
                inflight.append(writes[-1])
            elif event.error is not None or (item.is_video and video is None):
                message = event.error or f"{item.path}: no frames in the video"
                if video is not None:
                    video.abort()
                failed.add(item.path)
                summary.failed.append((str(item.path), message))
                report(item.path, message)
                bar.update(1)
            else:
                if video is not None:
                    video.finish()
                    summary.entries.append({"video": str(item.path), "folder": str(video.final)})
                summary.done += 1
                bar.update(1)
            if isinstance(event, Finished):
                video = None
        summary.entries += [w.result() for w in writes]
    ok = [item for item in inputs if item.path not in failed]
    if layout.coco_file and ok:
        summary.coco = assemble_coco(layout, ok, {"description": "clipseg masks", "prompts": labels})
    if "labels" in layout.formats:
        write_legend(layout)
    summary.seconds = time.perf_counter() - start
    return summary


def _write_image(
    layout: Layout, event: Decoded, masks: np.ndarray, scores: list[float], found: list[float]
) -> dict:
    """Write one image's outputs; returns its summary entry (the JSON of ``clipseg predict``)."""
    item = event.input
    folder = layout.root / item.key.parent
    folder.mkdir(parents=True, exist_ok=True)
    files = write_frame(layout, folder, item.key.name, event.image, masks)
    if layout.coco_file:
        instances = layout.coco_file == INSTANCES_FILE
        record = coco_record(str(item.name), masks, scores, layout.cut, frame=None, instances=instances)
        write_image_part(layout, item, record)
    height, width = masks.shape[1:]
    entry: dict = {"image": str(item.path), "size": [width, height], "masks": []}
    for i, (label, mask, score, present) in enumerate(zip(layout.labels, masks, scores, found)):
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


def _refuse_collisions(layout: Layout, inputs: Sequence[Input]) -> None:
    """Raise ``SourceError`` if two image inputs would write the same file (e.g. ``a`` and ``a_0``)."""
    owner: dict[Path, Path] = {}
    for item in inputs:
        if item.is_video:
            continue
        for path in layout.image_files(item):
            if path in owner:
                raise SourceError(
                    f"{owner[path]} and {item.path} would both write {path}: rename one of them"
                )
            owner[path] = item.path
