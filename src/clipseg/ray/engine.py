"""``clipseg predict --engine ray``: the same run as the local engine, its inputs masked by Ray actors.

The driver (this process) plans the run (``runs.BulkRun``: inputs, layout, resume-skip) and hands
``RayEngine.outcomes`` the inputs left to do, which go to a Ray Data pipeline as rows (path and output names, no pixels), records each
input's ``Outcome`` as it comes back (progress, errors by name) and finishes the run (COCO file,
legend, summary). Each actor loads the model once and runs ``BulkMasker.outcomes`` on its batches:
decoding, masking, post-processing and writing are the local engine's code, so names, formats and
bytes are the same; the actors write under ``--out``, which every node must see (one machine, or a
shared file system). A killed actor is restarted and its batch retried (Ray Data's defaults for actor
pools); the batch's outputs are written again whole (every file is written under a partial name and
renamed into place; the run clears the partial files at its end).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np
import ray
import ray.data

from clipseg.inference import Predictor
from clipseg.inference.bulk import BulkMasker
from clipseg.inference.runs import MaskOptions, Outcome
from clipseg.inference.sources import Input
from clipseg.inference.writers import Layout


class RayEngine:
    """Bulk masking on a Ray cluster: ``BulkRun.plan(...).run(RayEngine(...).outcomes)``.

    Args:
        load: makes the predictor, called once in each actor (picklable: a module-level function or
            a ``functools.partial`` of one, e.g. of ``clipseg.load_model``).
        prompts: as ``BulkMasker``'s; options: as ``BulkMasker``'s (``batch_size``: inputs per Ray task too).
        address: the cluster (``ray.init(address)``); None: ``RAY_ADDRESS``, else a local cluster
            for the run. A Ray already initialised in this process is used as it is.
        workers: actors, each with its own model.
        gpus_per_worker: GPUs each actor asks for (0.5: two actors share a GPU).
    """

    def __init__(
        self,
        load: Callable[[], Predictor],
        prompts: Sequence[object],
        options: MaskOptions,
        *,
        address: str | None = None,
        workers: int = 1,
        gpus_per_worker: float = 0.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers {workers}: at least 1 Ray actor")
        self.load, self.prompts, self.options = load, list(prompts), options
        self.address, self.workers, self.gpus = address, workers, gpus_per_worker

    def outcomes(self, layout: Layout, todo: Sequence[Input]) -> Iterator[Outcome]:
        """Mask and write ``todo`` in ``layout`` on the actors; one ``Outcome`` per input, as batches
        come back. Joins (or starts) Ray only when there is something to do."""
        if not todo:
            return
        rows = [
            {
                "index": i,
                "path": str(item.path),
                "name": str(item.name),
                "key": str(item.key),
                "video": item.is_video,
            }
            for i, item in enumerate(todo)
        ]
        # One block per batch, and at least one per actor: the batches spread over the actors.
        batch = self.options.batch_size
        blocks = min(len(rows), max(self.workers, -(-len(rows) // batch)))
        with connected(self.address):
            masked = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
                _Worker,
                fn_constructor_args=(self.load, self.prompts, self.options, layout),
                batch_size=batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
                num_gpus=self.gpus or None,
                # Fault tolerance is Ray Data's default for actor pools (max_restarts=-1,
                # max_task_retries=-1: a dead actor is restarted and its batches retried); setting
                # them through ray_remote_args is deprecated in Ray 2.60. A retried batch's rows come back once.
            )
            for row in masked.iter_rows():
                found = json.loads(row["outcome"])
                yield Outcome(todo[int(row["index"])], found["entry"], found["error"])


@contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Ray for the run: the one this process already joined, else ``ray.init(address)``, shut at the end."""
    if ray.is_initialized():
        yield
        return
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the run's own bar counts inputs
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" lines
    try:
        yield
    finally:
        ray.shutdown()


class _Worker:
    """One actor: a model and a ``BulkMasker`` that masks and writes each batch of input rows."""

    def __init__(
        self, load: Callable[[], Predictor], prompts: list, options: MaskOptions, layout: Layout
    ) -> None:
        self.masker = BulkMasker(load(), prompts, options)
        self.layout = layout

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {
            Input(Path(path), PurePosixPath(name), PurePosixPath(key), bool(video)): int(index)
            for index, path, name, key, video in zip(
                batch["index"], batch["path"], batch["name"], batch["key"], batch["video"]
            )
        }
        done = list(self.masker.outcomes(self.layout, list(inputs)))
        return {
            "index": np.array([inputs[o.input] for o in done], dtype=np.int64),
            "outcome": np.array(
                [json.dumps({"entry": o.entry, "error": o.error}) for o in done], dtype=object
            ),
        }
