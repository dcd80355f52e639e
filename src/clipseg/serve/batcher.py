"""Request batching: jobs that arrive within a short window run through one forward of the model.

Web requests come one per connection; the model is fastest on several images at once. A single
worker thread owns the predictor (the model is loaded once and never runs on two threads): it takes
the first waiting job and every job queued behind it, waiting up to ``window_s`` for more (at most
``max_images`` images and ``max_prompts`` distinct prompts, since every image is decoded for every
prompt of the batch), and runs them through ``Predictor.predict_each``. The default window is 0:
requests that arrive while the model runs queue up and form the next batch, so a request that comes
alone is not kept waiting (``bench/serve_bench.py`` measured both). A batch that fails is rerun job by job, so one bad
request (say, an all-black prompt mask) fails alone with its own message.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from clipseg.inference.predictor import Job, Predictor


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    """How long the batcher waits for company, and how big a batch may grow."""

    window_s: float = 0.0
    max_images: int = 16
    max_prompts: int = 32


@dataclass
class _Pending:
    job: Job
    future: Future


def _distinct_prompts(jobs: list[Job]) -> int:
    """How many conditionals ``jobs`` need at most: texts count once, negatives included."""
    negatives = [n for job in jobs if job.postprocess for n in job.postprocess.negative]
    return len({p if isinstance(p, str) else id(p) for job in jobs for p in [*job.prompts, *negatives]})


class Batcher:
    """Runs ``Job``s on ``predictor`` from one worker thread, in batches (see the module docstring).

    Use ``submit(job)`` (returns a ``Future`` of the job's ``K x H x W`` masks) from any thread;
    ``close()`` stops the worker. ``batches`` counts the forwards run, ``largest`` the most jobs in one.
    """

    def __init__(self, predictor: Predictor, *, limits: BatchLimits | None = None) -> None:
        self.predictor = predictor
        self.limits = limits or BatchLimits()
        self.batches = 0
        self.largest = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._next: _Pending | None = None  # a job that did not fit into the last batch
        self._worker = threading.Thread(target=self._run, name="clipseg-batcher", daemon=True)
        self._worker.start()

    def submit(self, job: Job) -> Future:
        """Queue ``job``; the future holds its masks (as ``Predictor.predict``) or its exception."""
        future: Future = Future()
        self._queue.put(_Pending(job, future))
        return future

    def close(self) -> None:
        """Finish the queued jobs, then stop the worker thread."""
        self._queue.put(None)
        self._worker.join()

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` and the jobs that arrive within the window and fit; True when told to stop."""
        batch = [first]
        deadline = time.monotonic() + self.limits.window_s
        while len(batch) < self.limits.max_images:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            if _distinct_prompts([p.job for p in (*batch, item)]) > self.limits.max_prompts:
                self._next = item  # it starts the next batch: jobs keep their order
                break
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:  # a gather ends at a job that does not fit or at the stop, never both
            first, self._next = self._next or self._queue.get(), None
            if first is None:
                return
            batch, stop = self._gather(first)
            self.batches += 1
            self.largest = max(self.largest, len(batch))
            try:
                results: list[np.ndarray] = self.predictor.predict_each([p.job for p in batch])
            except Exception:  # one bad job must not fail the others: rerun each alone
                for pending in batch:
                    self._run_alone(pending)
                continue
            for pending, result in zip(batch, results):
                pending.future.set_result(result)

    def _run_alone(self, pending: _Pending) -> None:
        try:
            pending.future.set_result(self.predictor.predict_each([pending.job])[0])
        except Exception as err:  # handed to the waiting request, which reports it
            pending.future.set_exception(err)
