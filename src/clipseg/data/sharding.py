"""Who am I in a distributed, multi-worker data pipeline: the (rank × DataLoader worker) shard."""

from __future__ import annotations

import os

import numpy as np
import torch


def rank_and_world_size(default: tuple[int, int] | None = None) -> tuple[int, int]:
    """This process's (rank, world size): from ``torch.distributed`` when initialised here, else
    ``default``, else the ``RANK`` / ``WORLD_SIZE`` environment variables (torchrun sets both).

    Datasets pass as ``default`` what they saw when built in the rank's main process: a DataLoader
    worker started with spawn/forkserver has no process group, and Lightning sets ``WORLD_SIZE`` but
    not ``RANK``, so the environment alone would put every rank's workers on rank 0's share.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if default is not None:
        return default
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def worker_shard(rank: int, world_size: int) -> tuple[int, int]:
    """``(shard, num_shards)`` of the current rank × DataLoader worker, for strided splitting.

    Shard ``worker_id * world_size + rank`` of ``world_size * num_workers``: every index lands in
    exactly one shard, and rank ``r`` gets exactly ``range(r, n, world_size)`` whatever its number of
    workers, so a rank's share (its ``len``) is known without knowing the workers.
    """
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return worker * world_size + rank, world_size * workers


def stream_entropy(seed: int, epoch: int, rank: int) -> int:
    """A 64-bit seed for an infinite random stream, distinct per rank, worker and epoch.

    Inside a DataLoader worker the worker seed changes with every new iterator (it derives from the
    main process's torch RNG, so ``seed_everything`` keeps it reproducible); ``epoch`` covers
    in-process iteration and persistent workers, where that seed stays fixed.
    """
    info = torch.utils.data.get_worker_info()
    worker, worker_seed = (info.id, info.seed) if info is not None else (0, 0)
    entropy = np.random.SeedSequence([seed, rank, worker, worker_seed, epoch])
    return int(entropy.generate_state(1, dtype=np.uint64)[0])
