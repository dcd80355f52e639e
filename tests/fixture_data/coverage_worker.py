"""One rank of the 2-process coverage test: ``python -m fixture_data.coverage_worker SHARDS OUT_JSON``.

RANK / WORLD_SIZE come from the environment (as torchrun or Lightning set them). Writes the sample ids
this rank saw, per case, to OUT_JSON.
"""

from __future__ import annotations

import json
import sys

from torch.utils.data import DataLoader

from clipseg.data.shapes.dataset import ShapesDataset
from clipseg.data.streaming import ShardStream


def ids(dataset, num_workers: int) -> list[str]:
    loader = DataLoader(dataset, batch_size=3, num_workers=num_workers, collate_fn=lambda items: items)
    return [sample["sample_id"] for batch in loader for sample in batch]


def main(shards: str, out: str) -> None:
    seen = {}
    for workers in (0, 2):
        for split in ("val", "test"):  # val: 4 shards (shard-level split), test: 3 (row-level)
            seen[f"shards-{split}-w{workers}"] = ids(ShardStream(source=shards, split=split), workers)
            seen[f"shuffled-{split}-w{workers}"] = ids(
                ShardStream(
                    source=shards, split=split, shuffle_buffer=8, buffer_input_shards=1, seed=3, train=True
                ),
                workers,
            )
        seen[f"shapes-w{workers}"] = ids(ShapesDataset(split="val", size=32, length=11), workers)
    with open(out, "w") as f:
        json.dump(seen, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
