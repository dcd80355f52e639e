"""Request batching: jobs that arrive within a short window run through one forward of the model.

Web requests come one per connection; the model is fastest on several images at once. A single
worker thread owns the predictor (the model is loaded once and never runs on two threads): it takes
the first waiting job and every job queued behind it, waiting up to ``window_s`` for more (at most
``max_images`` images and ``max_prompts`` distinct prompts, since every image is decoded for every
prompt of the batch), and runs them through ``Predictor.predict_each``. The default window is 0:
requests that arrive while the model runs queue up and form the next batch, so a request that comes
alone is not kept waiting (``bench/serve_bench.py`` measured both). A batch that fails is rerun job by job, so one bad
request (say, an all-black prompt mask) fails alone with its own message.

Back-pressure: at most ``max_queue`` jobs wait (``submit`` raises ``Busy`` for the next one at once,
the server answers 503), and a job whose future was cancelled before its forward started (its
request timed out) is dropped from the batch instead of computed for nobody.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from clipseg.inference.inputs import Job
from clipseg.inference.predictor import Predictor


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    """How long the batcher waits for company, how big a batch may grow, how many jobs may wait,
    and how long a request may take."""

    window_s: float = 0.0
    max_images: int = 16
    max_prompts: int = 32
    max_queue: int = 64
    timeout_s: float = 30.0  # a request not answered by then gets 504 (and its job is dropped if not started)


class Busy(RuntimeError):
    """``max_queue`` jobs already wait: come back later (HTTP 503 with ``Retry-After``)."""


class JobFuture(Future):
    """A job's future; ``batch_size`` is the number of jobs of the forward that ran it (0 until then),
    ``pooled`` the decoder's ``K x 3R`` summary of the job's prompts that a presence head reads
    (``Predictor.predict_pooled``; None without a head), set before the result."""

    batch_size: int = 0
    pooled: np.ndarray | None = None


@dataclass
class _Pending:
    job: Job
    future: JobFuture


def _distinct_prompts(jobs: list[Job]) -> int:
    """How many conditionals ``jobs`` need at most: texts count once, negatives included."""
    negatives = [n for job in jobs if job.postprocess for n in job.postprocess.negative]
    return len({p if isinstance(p, str) else id(p) for job in jobs for p in [*job.prompts, *negatives]})


class Batcher:
    """Runs ``Job``s on ``predictor`` from one worker thread, in batches (see the module docstring).

    Use ``submit(job)`` (returns a ``Future`` of the job's ``K x H x W`` masks) from any thread;
    ``close()`` stops the worker. ``batches`` counts the forwards run, ``largest`` the most jobs in one,
    ``depth`` the jobs waiting, ``busy`` whether a forward runs; ``on_batch(n)`` is called before each
    forward of ``n`` jobs (metrics).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        limits: BatchLimits | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.limits = limits or BatchLimits()
        self.on_batch = on_batch
        self.batches = 0
        self.largest = 0
        self.depth = 0  # jobs submitted and not yet taken into a batch
        self.busy = False
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._next: _Pending | None = None  # a job that did not fit into the last batch
        self._worker = threading.Thread(target=self._run, name="clipseg-batcher", daemon=True)
        self._worker.start()

    def submit(self, job: Job) -> JobFuture:
        """Queue ``job``; the future holds its masks (as ``Predictor.predict``) or its exception.

        Cancel the future to drop the job if its forward has not started. Raises ``Busy`` when
        ``limits.max_queue`` jobs already wait.
        """
        with self._lock:
            if self.depth >= self.limits.max_queue:
                raise Busy(
                    f"the server is busy: {self.depth} requests already wait for the model; try again in a moment"
                )
            self.depth += 1
        future = JobFuture()
        self._queue.put(_Pending(job, future))
        return future

    @property
    def idle(self) -> bool:
        """No job waits and no forward runs."""
        return self.depth == 0 and not self.busy

    def _take(self, item: _Pending | None) -> bool:
        """Count ``item`` out of the queue; False when its request gave up (cancelled): drop it."""
        if item is None:
            return True
        with self._lock:
            self.depth -= 1
        return item.future.set_running_or_notify_cancel()

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
            if not self._take(item):
                continue
            if _distinct_prompts([p.job for p in (*batch, item)]) > self.limits.max_prompts:
                self._next = item  # it starts the next batch: jobs keep their order
                break
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:  # a gather ends at a job that does not fit or at the stop, never both
            first, self._next = self._next, None
            if first is None:
                first = self._queue.get()
                if first is None:
                    return
                self.busy = True  # before the depth drops: `idle` never sees a job in between
                if not self._take(first):
                    self.busy = False
                    continue
            self.busy = True
            batch, stop = self._gather(first)
            self._forward(batch)
            self.busy = False

    def _forward(self, batch: list[_Pending]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        for pending in batch:
            pending.future.batch_size = len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        try:
            results = self.predictor.predict_each_pooled([p.job for p in batch])
        except Exception:  # one bad job must not fail the others: rerun each alone
            for pending in batch:
                self._run_alone(pending)
            return
        for pending, result in zip(batch, results):
            _answer(pending.future, *result)

    def _run_alone(self, pending: _Pending) -> None:
        try:
            _answer(pending.future, *self.predictor.predict_each_pooled([pending.job])[0])
        except Exception as err:  # handed to the waiting request, which reports it
            pending.future.set_exception(err)


def _answer(future: JobFuture, probs: np.ndarray, pooled: np.ndarray | None) -> None:
    """Hand ``probs`` to the waiting request, ``pooled`` set first."""
    future.pooled = pooled
    future.set_result(probs)
