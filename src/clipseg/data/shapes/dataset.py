"""``ShapesDataset``: the shapes world (``clipseg.data.shapes.scenes``) as a torch ``IterableDataset``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import torch

from clipseg.data.schema import Sample
from clipseg.data.shapes.scenes import SPLITS, ShapesConfig, make_sample
from clipseg.data.shapes.varied import style_from
from clipseg.data.sharding import rank_and_world_size, stream_entropy, worker_shard


class ShapesDataset(torch.utils.data.IterableDataset):
    """Shapes samples as a torch ``IterableDataset`` (optionally transformed).

    ``train`` is infinite: each (rank, DataLoader worker) draws its own stream, re-seeded per epoch
    from the DataLoader's worker seed (so ``seed_everything`` makes it reproducible). ``val``/``test``
    have ``length`` samples; index ``i`` is always ``make_sample(seed, i, split=split)`` and indices
    are split across ranks × workers without overlap.

    Args:
        split: "train", "val" or "test".
        seed: base seed of the split.
        size: scene side in pixels.
        length: number of samples (required for val/test; ``None`` = infinite train stream).
        negative_prob / hard_absent_prob / visual_prob / twin_prob / plain_rotation / text_weight_range / min_objects / max_objects /
            category_labels: see ``ShapesConfig``.
        varied_prob: share of scenes drawn with a varied look (``varied.VariedStyle``'s
            defaults; 0 draws the plain world).
        varied_style: other ``VariedStyle`` fields than ``prob`` (e.g. ``rotation``, ``backgrounds``);
            ``None`` keeps its defaults.
        transform: applied to each ``Sample`` (e.g. ``transforms.SampleTransform``); ``None`` yields samples.
        first_epoch: epoch number of the first infinite train stream (a resumed run starts past the
            epochs it already drew, so it does not replay them); fixed-length splits ignore it.
    """

    def __init__(
        self,
        *,
        split: str = "train",
        seed: int = 0,
        size: int = 128,
        length: int | None = None,
        negative_prob: float = 0.2,
        visual_prob: float = 0.5,
        twin_prob: float = 0.0,
        hard_absent_prob: float = 0.0,
        plain_rotation: float = 0.25,
        text_weight_range: tuple[float, float] = (0.0, 0.5),
        min_objects: int = 1,
        max_objects: int = 4,
        category_labels: bool = False,
        varied_prob: float = 0.0,
        varied_style: dict[str, Any] | None = None,
        transform: Callable[[Sample], Any] | None = None,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"unknown shapes split {split!r}; expected one of {SPLITS}")
        if split != "train" and length is None:
            raise ValueError(f"the {split} split of shapes needs a fixed length")
        self.split, self.seed, self.length, self.transform = split, seed, length, transform
        self.config = ShapesConfig(
            size=size,
            min_objects=min_objects,
            max_objects=max_objects,
            negative_prob=negative_prob,
            visual_prob=visual_prob,
            twin_prob=twin_prob,
            hard_absent_prob=hard_absent_prob,
            plain_rotation=plain_rotation,
            text_weight_range=tuple(text_weight_range),
            category_labels=category_labels,
            style=style_from(varied_prob, varied_style) if varied_prob > 0 else None,
        )
        self._epoch = first_epoch  # advances per __iter__ (in each worker's copy with persistent workers)
        self._launch_rank = rank_and_world_size()  # seen in the rank's main process

    def __len__(self) -> int:
        """Samples this rank yields (all its DataLoader workers together)."""
        if self.length is None:
            raise TypeError("the infinite shapes train stream has no length")
        rank, world = rank_and_world_size(self._launch_rank)
        return len(range(rank, self.length, world))

    def _indices(self) -> Iterator[tuple[int, int]]:
        """(stream seed, index) pairs this rank/worker must produce."""
        rank, world = rank_and_world_size(self._launch_rank)
        if self.length is None:
            stream_seed = stream_entropy(self.seed, self._epoch, rank)
            self._epoch += 1
            return ((stream_seed, i) for i in itertools.count())
        shard, num_shards = worker_shard(rank, world)
        # A bounded train split (length set) is a fixed list like val/test.
        return ((self.seed, i) for i in range(shard, self.length, num_shards))

    def __iter__(self) -> Iterator[Any]:
        for seed, index in self._indices():
            sample = make_sample(seed, index, split=self.split, config=self.config)
            yield sample if self.transform is None else self.transform(sample)
