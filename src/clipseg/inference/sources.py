"""Inputs for bulk masking: files, folders (recursive), globs and videos, decoded in background threads.

``collect_inputs(specs)`` expands what the user named into ``Input`` items, each with the ``key``
(a relative path without extension) under which its outputs are written, so that the output tree
mirrors the input tree: paths are taken relative to the common folder of the named inputs (a named
folder counts as the folder itself, a named file as its parent, a glob as its folder before the
first wildcard). Inputs that share a folder and a stem (``cat.png``, ``cat.jpg``) get their
extension appended to the stem (``cat-png``, ``cat-jpg``), so no two inputs write the same file.
A video's outputs go to a folder named like the video file (``clips/walk.mp4/``).

``decode(inputs)`` streams ``Decoded`` frames (one per image, every frame of a video, via PyAV) and
one ``Finished`` event per input, in input order; a bounded queue keeps memory flat.
"""

from __future__ import annotations

import glob
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from clipseg.core.images import ImageError, load_image
from clipseg.inference.stamps import STAMP_FILE, read_stamp

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
_WILDCARDS = frozenset("*?[")


class SourceError(ValueError):
    """A named input that matches nothing; the message names it."""


@dataclass(frozen=True)
class Input:
    """One input file: ``name`` is its path relative to the inputs' common folder; its outputs go under ``key``.

    ``key`` is ``name`` without the extension for images (extension appended to the stem where two
    images share a folder and stem) and ``name`` itself for videos (their outputs fill a folder).
    """

    path: Path
    name: PurePosixPath
    key: PurePosixPath
    is_video: bool


@dataclass(frozen=True)
class Decoded:
    """One image, or frame ``index`` of a video (``fps`` set), as ``H x W x 3`` uint8."""

    input: Input
    index: int
    image: np.ndarray
    fps: float | None = None


@dataclass(frozen=True)
class Finished:
    """All frames of ``input`` were streamed, or ``error`` says why it could not be read."""

    input: Input
    error: str | None = None


def collect_inputs(specs: Sequence[str | Path], *, exclude: Path | None = None) -> list[Input]:
    """Expand files, folders (recursively) and globs into ``Input`` items, in the order given.

    Files inside folders and globs are sorted and filtered by image/video suffix; hidden files and
    the outputs of earlier runs under ``exclude`` (the output folder; see ``stamps``) are skipped,
    the user's own files there are not (``--out`` may be the inputs' folder). Raises ``SourceError``
    for a spec that matches nothing.
    """
    excluded = os.path.abspath(exclude) if exclude is not None else None
    found: dict[str, Path] = {}  # absolute path -> path as the user spelled it, first wins
    roots: list[str] = []
    for spec in specs:
        spec = str(spec)
        files, root = _expand(spec)
        if excluded is not None and not Path(spec).is_file():  # a file named on its own is meant
            files = [f for f in files if not _is_output(f, excluded)]
        if not files:
            raise SourceError(f"{spec}: no such file, or no image or video in it")
        roots.append(root)
        for f in files:
            found.setdefault(os.path.abspath(f), f)
    base = os.path.commonpath(roots)
    rel = {absolute: PurePosixPath(Path(os.path.relpath(absolute, base)).as_posix()) for absolute in found}
    stems = Counter((r.parent, r.stem) for r in rel.values() if not _is_video(r))
    inputs = []
    for absolute, path in found.items():
        r = rel[absolute]
        if _is_video(r):
            inputs.append(Input(path=path, name=r, key=r, is_video=True))
            continue
        stem = r.stem if stems[(r.parent, r.stem)] == 1 else f"{r.stem}-{r.suffix.lstrip('.')}"
        inputs.append(Input(path=path, name=r, key=r.parent / stem, is_video=False))
    return inputs


def _is_video(path: PurePosixPath) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _expand(spec: str) -> tuple[list[Path], str]:
    """Files named by ``spec`` and the absolute folder their output paths are relative to."""
    path = Path(spec)
    if path.is_dir():
        return _folder_files(path), os.path.abspath(path)
    if path.is_file() or not _WILDCARDS & set(spec):
        return ([path] if path.is_file() else []), os.path.abspath(path.parent)
    files: list[Path] = []
    for match in map(Path, sorted(glob.glob(spec, recursive=True))):
        if match.is_dir():
            files += _folder_files(match)
        elif match.suffix.lower() in MEDIA_SUFFIXES:
            files.append(match)
    root = []
    for part in path.parts[:-1]:
        if _WILDCARDS & set(part):
            break
        root.append(part)
    return files, os.path.abspath(Path(*root) if root else Path("."))


def _folder_files(folder: Path) -> list[Path]:
    """Image and video files under ``folder``, sorted, without hidden files or hidden sub-folders."""
    return [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.suffix.lower() in MEDIA_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _is_output(path: Path, out: str) -> bool:
    """Whether ``path`` is under ``out`` and was written by a run: a stamped image, or a file of a
    video's output folder (which holds a stamp file)."""
    if not _is_under(os.path.abspath(path), out):
        return False
    return read_stamp(path) is not None or (path.parent / STAMP_FILE).is_file()


Event = Decoded | Finished


def decode(inputs: Sequence[Input], *, workers: int = 2, prefetch: int = 16) -> Iterator[Event]:
    """Stream ``Decoded`` frames and ``Finished`` events in input order, decoding in background threads.

    Images are decoded by ``workers`` threads; videos frame by frame (PyAV, its own threads). At most
    ``prefetch`` decoded frames wait in the queue, so memory does not grow with the number of inputs.
    """
    events: queue.Queue[Future | None] = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def put(item: Future | None) -> bool:
        while not stop.is_set():
            try:
                events.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(pool: ThreadPoolExecutor) -> None:
        try:
            for item in inputs:
                if item.is_video:
                    for event in _video_events(item):
                        if not put(_done(event)):
                            return
                elif not put(pool.submit(_image_events, item)):
                    return
        finally:
            put(None)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipseg-decode") as pool:
        producer = threading.Thread(target=produce, args=(pool,), name="clipseg-sources", daemon=True)
        producer.start()
        try:
            while (future := events.get()) is not None:
                yield from future.result()
        finally:
            stop.set()
            producer.join()


def _done(value: Event) -> Future:
    future: Future = Future()
    future.set_result([value])
    return future


def _image_events(item: Input) -> list[Event]:
    try:
        return [Decoded(item, 0, load_image(item.path)), Finished(item)]
    except ImageError as err:  # its message names the file
        return [Finished(item, str(err))]
    except (OSError, ValueError) as err:  # anything else a broken file raises: still this input's failure
        return [Finished(item, f"{item.path}: not a readable image ({err})")]


def _video_events(item: Input) -> Iterator[Event]:
    import av  # PyAV: only needed when a video is given

    try:
        with av.open(str(item.path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream in it")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or 25
            for index, frame in enumerate(container.decode(stream)):
                yield Decoded(item, index, frame.to_ndarray(format="rgb24"), fps=float(rate))
    except (av.FFmpegError, ValueError, OSError) as err:
        yield Finished(item, f"{item.path}: not a readable video ({err})")
        return
    yield Finished(item)
