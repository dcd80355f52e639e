"""Stream parquet shards (``SHARD_FEATURES`` rows) with HF ``datasets`` and turn rows into ``Sample``s.

    shards ──load_dataset(streaming)──▶ shuffle buffer ──split_dataset_by_node──▶ DataLoader worker split
           ──decode_row──▶ PromptPolicy (class filter, negatives, visual prompts, text weight) ──▶ transform

Shards may live in a local folder or behind any fsspec URL (``s3://``, ``gs://``, ``hf://``, ...).
"""

from __future__ import annotations

import glob
import io
import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from datasets import load_dataset
from datasets.distributed import split_dataset_by_node
from PIL import Image

from clipseg.core.errors import NoShards
from clipseg.data.classes import phrase_mentions_any
from clipseg.data.schema import NO_CLASS, SHARD_FEATURES, Sample
from clipseg.data.sharding import rank_and_world_size


class CorruptRow(ValueError):
    """A shard row that cannot be decoded; the message names its ``sample_id``."""

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(f"corrupt shard row {sample_id!r}: {reason}")
        self.sample_id = sample_id


def check_local_shards(files: str) -> None:
    """Raise ``NoShards`` when ``files`` (from ``shard_files``) is a local pattern matching nothing.

    An empty stream never raises: training would wait at step 0 forever, ending one empty epoch
    after the other. URLs are left to the stream (listing a bucket here would cost a round trip).
    """
    if "://" in files or glob.glob(files, recursive=True):
        return
    folder = Path(files).parent
    hint = "" if folder.is_dir() else f" ({folder} does not exist)"
    raise NoShards(
        f"no shards match {files}{hint}; write them with `clipseg prepare` (your own images: "
        "`clipseg prepare folder --src DIR --out FOLDER`) and pass FOLDER as --data.init_args.data_dir"
    )


def shard_files(source: str, split: str) -> str:
    """The ``data_files`` pattern of ``split`` under ``source``.

    ``source`` is a folder written by ``prepare`` (local path or URL; shards of a split live in
    ``<source>/<split>/*.parquet``) or a pattern containing ``{split}``, e.g.
    ``"s3://bucket/phrasecut/{split}-*.parquet"``.
    """
    source = str(source)
    if "{split}" in source:
        return source.format(split=split)
    return f"{source.rstrip('/')}/{split}/*.parquet"


# uint8 -> float32 in [0, 1], the same numbers as ``alpha.astype(np.float32) / 255.0`` in one pass.
MASK_LEVELS = np.arange(256, dtype=np.float32) / 255.0


# libjpeg-turbo through OpenCV, as PIL decodes it but straight into an RGB array (no RGBX unpacking):
# ~40 % faster for the two JPEGs of a PhraseCut+ sample. EXIF orientation is ignored, as PIL does.
_JPEG_AS_RGB = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def decode_image(data: bytes, mode: str) -> np.ndarray:
    """``data`` (an encoded image) as an ``H x W x 3`` (mode "RGB") or ``H x W`` (mode "L") uint8 array, PIL's pixels."""
    with Image.open(io.BytesIO(data)) as img:  # reads the header only
        # Only where both decoders give the same pixels (tested): YCbCr and gray JPEGs; CMYK ones convert
        # differently. OpenCV refuses truncated or corrupt data (None): PIL then raises its own error.
        if mode == "RGB" and img.format == "JPEG" and img.mode in ("RGB", "L"):
            rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _JPEG_AS_RGB)
            if rgb is not None:
                return rgb
        return np.asarray(img if img.mode == mode else img.convert(mode))  # convert copies even then


def decode_mask_pair(image: bytes, mask: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decode an (image, mask) pair: ``H x W x 3`` uint8 and ``H x W`` float32 in [0, 1]."""
    rgb = decode_image(image, "RGB")
    alpha = cv2.LUT(decode_image(mask, "L"), MASK_LEVELS)
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(
            f"mask is {alpha.shape[1]}x{alpha.shape[0]} but the image is {rgb.shape[1]}x{rgb.shape[0]}"
        )
    return rgb, alpha


def decode_row(row: dict[str, Any]) -> tuple[Sample, tuple[bytes, bytes] | None]:
    """Decode one shard row into a ``Sample`` (``support`` left ``None``) and its raw support pair, if any.

    Raises ``CorruptRow`` naming the sample when any field fails to decode.
    """
    sample_id = row.get("sample_id") or "<missing sample_id>"
    try:
        image, mask = decode_mask_pair(row["image"], row["mask"])
        label = None
        if row.get("label") is not None:
            label = decode_image(row["label"], "L").astype(np.int64)
            if label.shape != mask.shape:
                raise ValueError(f"label map is {label.shape} but the mask is {mask.shape}")
        meta = json.loads(row.get("meta") or "{}")
    except Exception as err:  # any decoder failure (PIL, JSON, missing key) names the row
        raise CorruptRow(sample_id, f"{type(err).__name__}: {err}") from err
    sample: Sample = {
        "sample_id": sample_id,
        "image": image,
        "mask": mask,
        "text": row.get("text") or "",
        "class_id": NO_CLASS if row.get("class_id") is None else int(row["class_id"]),
        "support": None,
        "support_mask": None,
        "label": label,
        "text_weight": 1.0,
        "meta": meta,
    }
    has_support = row.get("support_image") is not None and row.get("support_mask") is not None
    return sample, (row["support_image"], row["support_mask"]) if has_support else None


@dataclass(frozen=True)
class _Recent:
    """A recently streamed positive sample, a source of negatives (its phrase, image and mask)."""

    text: str
    image_key: str
    image: bytes
    mask: bytes


@dataclass
class PromptPolicy:
    """How a stream of rows becomes prompted samples (PhraseCut+ when ``negative_prob`` > 0 and ``visual``).

    * rows whose phrase names one of ``exclude_classes`` (or a synonym) are dropped;
    * with probability ``negative_prob`` the phrase is replaced by that of a recent sample from another
      image (a reservoir of ``reservoir_size``), the mask emptied, and that sample becomes the support;
      a phrase the row's ``meta["prompts"]`` lists (the image's other annotated prompts) is never used,
      since that object is in the image;
    * ``same_phrase_support``: a row without a support of its own takes a recent sample of the same
      phrase from another image as its support (users' own data has no prepared supports);
    * with ``visual``, the decoded support pair becomes the sample's ``support`` + ``support_mask`` for a
      ``visual_prob`` share of the samples (the transform makes the visual prompt of them); without a
      valid one (no pair, or an empty mask), ``support`` stays ``None`` (flagged invalid in the batch);
    * ``text_weight`` w ~ U(``text_weight_range``) with a support, w = 1 without.

    Randomness is drawn per sample from (seed, epoch, sample_id): independent of worker layout.
    """

    negative_prob: float = 0.0
    visual: bool = False
    visual_prob: float = 1.0
    same_phrase_support: bool = False
    text_weight_range: tuple[float, float] = (0.0, 0.5)
    exclude_classes: Sequence[str] = ()
    reservoir_size: int = 64
    seed: int = 0

    def __call__(self, rows: Iterable[dict[str, Any]], epoch: int = 0) -> Iterator[Sample]:
        recent: deque[_Recent] = deque(maxlen=self.reservoir_size)
        for row in rows:
            if self.exclude_classes and phrase_mentions_any(row.get("text") or "", self.exclude_classes):
                continue
            sample, support = decode_row(row)
            rng = random.Random(f"{self.seed}/{epoch}/{sample['sample_id']}")
            image_key = str(sample["meta"].get("image_id", sample["sample_id"]))
            present = (sample["text"], *sample["meta"].get("prompts", ()))
            other = self._negative_source(rng, present, image_key, recent)
            if support is None and other is None and self.same_phrase_support:
                support = self._same_phrase_support(rng, sample["text"], image_key, recent)
            if sample["mask"].any():
                recent.append(_Recent(sample["text"], image_key, row["image"], row["mask"]))
            if other is not None:
                sample["text"], sample["mask"] = other.text, np.zeros_like(sample["mask"])
                sample["meta"] = {**sample["meta"], "negative_of": other.image_key}
                support = (other.image, other.mask)
            # Drawn only below 1, so that streams without the option keep their draws.
            wanted = self.visual_prob >= 1 or rng.random() < self.visual_prob
            if self.visual and support is not None and wanted:
                sample["support"], sample["support_mask"] = self._support_pair(sample["sample_id"], *support)
            if sample["support"] is not None:
                sample["text_weight"] = rng.uniform(*self.text_weight_range)
            yield sample

    def _negative_source(
        self, rng: random.Random, present: Sequence[str], image_key: str, recent: deque[_Recent]
    ) -> _Recent | None:
        """A recent sample of another image whose phrase is none of ``present`` (the row's phrase first)."""
        if not present[0] or rng.random() >= self.negative_prob:
            return None
        candidates = [r for r in recent if r.image_key != image_key and r.text not in present]
        return rng.choice(candidates) if candidates else None

    @staticmethod
    def _same_phrase_support(
        rng: random.Random, text: str, image_key: str, recent: deque[_Recent]
    ) -> tuple[bytes, bytes] | None:
        candidates = [r for r in recent if r.image_key != image_key and r.text == text]
        if not candidates:
            return None
        chosen = rng.choice(candidates)
        return chosen.image, chosen.mask

    @staticmethod
    def _support_pair(
        sample_id: str, image: bytes, mask: bytes
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        try:
            rgb, alpha = decode_mask_pair(image, mask)
        except Exception as err:
            raise CorruptRow(sample_id, f"support: {type(err).__name__}: {err}") from err
        if not alpha.any():
            return None, None  # nothing to point at: an invalid support rather than the whole image
        return rgb, alpha


class ShardStream(torch.utils.data.IterableDataset):
    """Prompted (and optionally transformed) samples streamed from the parquet shards of one split.

    Each rank reads its part (``split_dataset_by_node``; shards when their count divides the world
    size, every ``world_size``-th row otherwise) and each DataLoader worker its subset of shards, so no
    row is seen twice per epoch. Use at least as many shards as ranks × workers to keep all busy.

    Args:
        source: shard folder or pattern (see ``shard_files``).
        split: split name ("train", "val", "test", ...).
        policy: how rows become prompted samples.
        transform: applied to each ``Sample`` (e.g. ``transforms.SampleTransform``).
        shuffle_buffer: rows in the shuffle buffer (0 = stream order); shard order is shuffled too.
        buffer_input_shards: shards read at once into the shuffle buffer (more mixes better; HF reads
            them with prefetch threads and, for parquet, sleeps 5 s when such a stream ends, so a
            split of one shard is read without them).
        seed: shuffle seed; identical on every rank, as ``split_dataset_by_node`` requires.
        train: vary shuffling and prompt randomness by epoch (evaluation streams stay fixed).
        first_epoch: epoch number of the first train pass (see ``ShapesDataset``); ignored unless ``train``.
    """

    def __init__(
        self,
        *,
        source: str,
        split: str,
        policy: PromptPolicy | None = None,
        transform: Callable[[Sample], Any] | None = None,
        shuffle_buffer: int = 0,
        buffer_input_shards: int = 8,
        seed: int = 0,
        train: bool = False,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.files = shard_files(source, split)
        check_local_shards(self.files)
        self.rows = load_dataset(
            "parquet", data_files=self.files, split="train", streaming=True, features=SHARD_FEATURES
        )
        self.policy = policy or PromptPolicy()
        self.transform, self.shuffle_buffer, self.seed, self.train = transform, shuffle_buffer, seed, train
        self.buffer_input_shards = buffer_input_shards
        self._epoch = first_epoch
        self._launch_rank = rank_and_world_size()  # seen in the rank's main process

    @property
    def num_shards(self) -> int:
        return self.rows.num_shards

    def __iter__(self) -> Iterator[Any]:
        epoch = self._epoch if self.train else 0
        self._epoch += 1
        rows = self.rows
        if self.shuffle_buffer > 0:
            rows = rows.shuffle(
                seed=self.seed,
                buffer_size=self.shuffle_buffer,
                # Interleaving shards reads them in threads, and parquet's reader then sleeps 5 s at
                # the end of every pass (datasets' SLEEP_TIME_ON_THREADS_SHUTDOWN): on a one-shard
                # split (a small folder, whose epoch is a few batches) that was most of each step.
                max_buffer_input_shards=min(self.buffer_input_shards, self.num_shards),
            )
            rows.set_epoch(epoch)
        rank, world = rank_and_world_size(self._launch_rank)
        if world > 1:
            rows = split_dataset_by_node(rows, rank=rank, world_size=world)
        for sample in self.policy(rows, epoch):
            yield sample if self.transform is None else self.transform(sample)
