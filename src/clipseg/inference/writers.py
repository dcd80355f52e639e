"""Output files of bulk masking: PNG masks, RGBA cut-outs, npz, COCO JSON, overlays, mask videos.

Every file is written next to its target under a ``.NAME.tmp-PID`` name and renamed into place,
so a run that is killed leaves complete files only (``remove_partials`` clears the leftovers). An
input counts as done when all of its files exist and carry the options of this run (``stamps``); a
rerun skips it. A video's outputs are built in a
partial folder that is renamed into place when the video is finished. COCO records are written per
input (``.coco-parts/``, hidden) and assembled into ``coco.json`` at the end of every run, so the
result does not depend on where an earlier run stopped.

Names, for an image ``KEY`` (see ``sources``) and output mask ``i`` with label ``L``:
``KEY_i_L.png`` (png), ``KEY_i_L_rgba.png`` (rgba), ``KEY.npz`` (npz), ``KEY_overlay.png``
(overlay); for frame ``n`` of a video, the same with ``KEY`` = ``VIDEO/n`` (6 digits), and the mask
video ``VIDEO/i_L.mp4``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipseg.core.files import atomic_write, partial_name
from clipseg.inference.sources import Input
from clipseg.inference.stamps import STAMP_FILE, STAMP_KEY, read_stamp

FORMATS: tuple[str, ...] = ("png", "rgba", "npz", "coco", "overlay", "labels", "instances")
VIDEO_OUTPUTS: tuple[str, ...] = ("frames", "video", "both")
COCO_FILE = "coco.json"
INSTANCES_FILE = "instances.json"  # COCO too, one annotation per instance
LEGEND_FILE = "labels.json"  # label value -> prompt, for the KEY_labels.png maps
PARTS_DIR = ".coco-parts"
VIDEO_PART = ".coco-part.json"
_PARTIAL = re.compile(r"^\..+\.tmp-\d+$")  # what ``partial_name`` makes


def remove_partials(root: Path) -> None:
    """Delete what a killed run left half-written under ``root`` (files and folders named ``.NAME.tmp-PID``)."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        for name in [d for d in dirs if _PARTIAL.match(d)]:
            shutil.rmtree(Path(folder, name), ignore_errors=True)
            dirs.remove(name)
        for name in files:
            if _PARTIAL.match(name):
                Path(folder, name).unlink(missing_ok=True)


def slug(text: str) -> str:
    """A file-name-safe form of a prompt label."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "prompt"


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where the outputs of each input go, and in which formats."""

    root: Path
    labels: tuple[str, ...]
    formats: tuple[str, ...] = ("png", "overlay")
    video_output: str = "frames"
    cut: float = 0.5  # binarisation for COCO and the reported areas
    stamp: str = ""  # the run's options (``stamps.run_stamp``), written into every output

    def __post_init__(self) -> None:
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown or not self.formats:
            raise ValueError(
                f"unknown output format {', '.join(unknown) or '(none)'}; use {', '.join(FORMATS)}"
            )
        if {"coco", "instances"} <= set(self.formats):
            raise ValueError("formats coco and instances both write COCO records: choose one")
        if self.video_output not in VIDEO_OUTPUTS:
            raise ValueError(
                f"video output must be one of {', '.join(VIDEO_OUTPUTS)}, got {self.video_output!r}"
            )

    @property
    def coco_file(self) -> str | None:
        """The COCO file this layout writes (per mask or per instance), if any."""
        if "instances" in self.formats:
            return INSTANCES_FILE
        return COCO_FILE if "coco" in self.formats else None

    @property
    def mask_names(self) -> list[str]:
        return [f"{i}_{slug(label)}" for i, label in enumerate(self.labels)]

    def frame_files(self, folder: Path, prefix: str) -> dict[str, list[Path]]:
        """Files of one image or frame by format (COCO records are kept elsewhere)."""
        files = {
            "png": [folder / f"{prefix}_{m}.png" for m in self.mask_names],
            "rgba": [folder / f"{prefix}_{m}_rgba.png" for m in self.mask_names],
            "npz": [folder / f"{prefix}.npz"],
            "overlay": [folder / f"{prefix}_overlay.png"],
            "labels": [folder / f"{prefix}_labels.png"],
        }
        return {fmt: files[fmt] for fmt in self.formats if fmt in files}

    def image_files(self, item: Input) -> list[Path]:
        """Every file an image input writes (its COCO record included)."""
        folder = self.root / item.key.parent
        files = [f for group in self.frame_files(folder, item.key.name).values() for f in group]
        return files + ([self.part_path(item)] if self.coco_file else [])

    def part_path(self, item: Input) -> Path:
        if item.is_video:
            return self.root / item.key / VIDEO_PART
        return self.root / PARTS_DIR / f"{item.key}.json"

    def is_complete(self, item: Input) -> bool:
        """Whether ``item``'s outputs exist in this layout's formats and were made with this run's
        options (``stamp``); a video's folder is renamed into place only when complete, so its first
        frame's files stand for all of them."""
        if not item.is_video:
            files = self.image_files(item)
            return all(f.exists() for f in files) and read_stamp(files[0]) == self.stamp
        folder = self.root / item.key
        if read_stamp(folder / STAMP_FILE) != self.stamp:
            return False
        files = [self.part_path(item)] if self.coco_file else []
        if self.video_output != "frames":
            files += [folder / f"{m}.mp4" for m in self.mask_names]
        if self.frames_per_file:
            files += [f for group in self.frame_files(folder, frame_prefix(0)).values() for f in group]
        return folder.is_dir() and all(f.exists() for f in files)

    @property
    def frames_per_file(self) -> bool:
        return self.video_output in ("frames", "both")


def mask_to_gray(mask: np.ndarray) -> np.ndarray:
    """A mask (any shape) in [0, 1] as uint8 gray levels 0..255, as every mask file stores it."""
    return (mask * 255).round().astype(np.uint8)


def frame_prefix(index: int) -> str:
    """How the files of a video's frame ``index`` start (6 digits: they sort in frame order)."""
    return f"{index:06d}"


def write_frame(
    layout: Layout, folder: Path, prefix: str, image: np.ndarray, masks: np.ndarray
) -> dict[str, list[Path]]:
    """Write the per-image formats of ``masks`` (``K x H x W`` in [0, 1]) for ``image`` (``H x W x 3``)."""
    from clipseg.inference.overlay import overlay

    files = layout.frame_files(folder, prefix)
    gray = [mask_to_gray(m) for m in masks]
    jobs: list[tuple[Path, Callable[[Path], None]]] = []
    save_png = partial(_save_png, stamp=layout.stamp)
    for path, g in zip(files.get("png", []), gray):
        jobs.append((path, partial(save_png, Image.fromarray(g))))
    for path, g in zip(files.get("rgba", []), gray):
        jobs.append((path, partial(save_png, Image.fromarray(np.dstack([image, g]), "RGBA"))))
    for path in files.get("npz", []):
        arrays = {"masks": masks.astype(np.float32), "labels": np.array(layout.labels)}
        jobs.append((path, partial(_save_npz, **arrays, **{STAMP_KEY: np.array(layout.stamp)})))
    for path in files.get("labels", []):
        jobs.append((path, partial(save_png, labels_image(masks, layout.cut, layout.labels, image))))
    for path in files.get("overlay", []):
        jobs.append((path, partial(save_png, overlay(image, masks, list(layout.labels)))))
    for path, save in jobs:
        atomic_write(path, save)
    return files


def labels_image(
    masks: np.ndarray, cut: float, labels: Sequence[str], image: np.ndarray | None = None
) -> Image.Image:
    """An indexed (palette) PNG image of ``label_map(masks, cut)`` (``K x H x W`` masks): 0 black,
    ``k + 1`` the colour the overlay's legend gives ``labels[k]`` on ``image`` (``legend_colours``)."""
    from clipseg.inference.overlay import legend_colours
    from clipseg.inference.segment import label_map

    indexed = Image.fromarray(label_map(masks, cut).astype(np.uint8), "P")
    indexed.putpalette([0, 0, 0] + [v for colour in legend_colours(labels, image) for v in colour])
    return indexed


def _save_png(image: Image.Image, path: Path, *, stamp: str) -> None:
    info = PngInfo()
    info.add_text(STAMP_KEY, stamp)
    image.save(path, format="PNG", pnginfo=info)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with path.open("wb") as fh:  # a file object: numpy would append ".npz" to the partial name
        np.savez(fh, **arrays)


def coco_record(
    name: str,
    masks: np.ndarray,
    scores: Sequence[float],
    cut: float,
    frame: int | None,
    *,
    instances: bool = False,
) -> dict:
    """One image's COCO entry: size, and an RLE annotation per non-empty mask (binarised at ``cut``),
    or per instance of each mask (``inference.segment.find_instances``; score: its mean probability)."""
    from clipseg.inference.segment import find_instances

    height, width = masks.shape[1:]
    record: dict = {"file_name": name, "width": width, "height": height, "annotations": []}
    if frame is not None:
        record["frame"] = frame
    for index, (mask, score) in enumerate(zip(masks, scores)):
        if instances:
            found = [(i.mask, i.score) for i in find_instances(mask, index, threshold=cut)]
        else:
            found = [(mask >= cut, score)] if (mask >= cut).any() else []
        record["annotations"] += [_annotation(index, binary, value) for binary, value in found]
    return record


def mask_rle(binary: np.ndarray) -> dict:
    """COCO RLE of one ``H x W`` bool mask as JSON takes it: ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(binary, dtype=np.uint8))
    return {"size": list(binary.shape), "counts": rle["counts"].decode("ascii")}


def _annotation(category: int, binary: np.ndarray, score: float) -> dict:
    """A COCO annotation of one ``H x W`` bool mask: RLE, area, bbox and score."""
    from pycocotools import mask as mask_utils

    segmentation = mask_rle(binary)
    rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    return {
        "category": category,
        "segmentation": segmentation,
        "area": int(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "score": round(float(score), 6),
    }


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n"))


def write_legend(layout: Layout) -> Path:
    """``labels.json``: what each value of the ``KEY_labels.png`` maps stands for."""
    path = layout.root / LEGEND_FILE
    _write_json(path, {"0": "background", **{str(k + 1): label for k, label in enumerate(layout.labels)}})
    return path


def write_image_part(layout: Layout, item: Input, record: dict) -> None:
    _write_json(layout.part_path(item), [{**record, STAMP_KEY: layout.stamp}])


def assemble_coco(layout: Layout, items: Sequence[Input], info: dict) -> Path:
    """Write ``coco.json`` from the records of ``items`` (in order): ids follow that order, so reruns agree."""
    images, annotations = [], []
    for item in items:
        for record in json.loads(layout.part_path(item).read_text()):
            record.pop(STAMP_KEY, None)
            image_id = len(images) + 1
            found = record.pop("annotations")
            images.append({"id": image_id, **record})
            for ann in found:
                category = ann.pop("category") + 1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": category,
                        "iscrowd": 0,
                        **ann,
                    }
                )
    categories = [{"id": i + 1, "name": label} for i, label in enumerate(layout.labels)]
    path = layout.root / (layout.coco_file or COCO_FILE)
    _write_json(path, {"info": info, "images": images, "annotations": annotations, "categories": categories})
    return path


class VideoWriter:
    """Outputs of one video, built in a partial folder and renamed into place by ``finish``.

    Frames arrive in order; the mask video (``video_output`` ``video`` or ``both``) is encoded as
    they come (H.264 in MP4 via PyAV; odd sizes are padded by one row/column), so memory stays flat.
    """

    def __init__(self, layout: Layout, item: Input, *, fps: float) -> None:
        self.layout, self.item, self.fps = layout, item, fps
        self.final = layout.root / item.key
        self.folder = partial_name(self.final)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.records: list[dict] = []
        self._encoders: list = []

    def add(self, index: int, image: np.ndarray, masks: np.ndarray, scores: Sequence[float]) -> None:
        """Write frame ``index``: ``masks`` is ``K x H x W`` in [0, 1], ``image`` ``H x W x 3`` uint8."""
        if self.layout.frames_per_file:
            write_frame(self.layout, self.folder, frame_prefix(index), image, masks)
        if self.layout.video_output != "frames":
            self._encode(masks)
        if self.layout.coco_file:
            name = str(self.item.name)
            instances = self.layout.coco_file == INSTANCES_FILE
            self.records.append(
                coco_record(name, masks, scores, self.layout.cut, frame=index, instances=instances)
            )

    def _encode(self, masks: np.ndarray) -> None:
        import av

        height, width = masks.shape[1] + masks.shape[1] % 2, masks.shape[2] + masks.shape[2] % 2
        if not self._encoders:
            for name in self.layout.mask_names:
                container = av.open(str(self.folder / f"{name}.mp4"), mode="w")
                stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"crf": "17"}
                self._encoders.append((container, stream))
        for (container, stream), mask in zip(self._encoders, masks):
            gray = mask_to_gray(mask)
            gray = np.pad(gray, ((0, height - gray.shape[0]), (0, width - gray.shape[1])), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=2), format="rgb24")
            container.mux(stream.encode(frame))

    def finish(self) -> None:
        """Close the mask videos, write the COCO records and move the folder into place."""
        for container, stream in self._encoders:
            container.mux(stream.encode(None))
            container.close()
        self._encoders = []
        if self.layout.coco_file:
            _write_json(self.folder / VIDEO_PART, self.records)
        (self.folder / STAMP_FILE).write_text(self.layout.stamp)
        trash = partial_name(self.final.with_name(f"{self.final.name}.old"))
        if self.final.exists():  # --overwrite: swap, then delete the old outputs
            self.final.replace(trash)
        self.folder.replace(self.final)
        shutil.rmtree(trash, ignore_errors=True)

    def abort(self) -> None:
        """Drop everything written for this video (it could not be read to the end)."""
        for container, _ in self._encoders:
            container.close()
        self._encoders = []
        shutil.rmtree(self.folder, ignore_errors=True)
