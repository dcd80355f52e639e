"""The batcher: jobs queued while the model runs form the next batch, within the image and prompt
limits; a failing batch is rerun job by job (issue 18)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from clipseg.inference.inputs import Job
from clipseg.serve.batcher import Batcher, BatchLimits


class SlowFake:
    """A predictor whose first call waits for ``release``; records the jobs of each call; a job's
    result is ``len(prompts) x 1 x 1``, filled with the value of its image's first pixel."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[Job]] = []
        self.release = threading.Event()

    def predict_each_pooled(self, jobs):
        return [(probs, None) for probs in self.predict_each(jobs)]

    def predict_each(self, jobs):
        self.calls.append(list(jobs))
        if len(self.calls) == 1:
            self.release.wait(10)
        if any("boom" in job.prompts for job in jobs):
            raise ValueError("boom: a bad prompt")
        # Made from each job's own image and prompts, so a result handed to another request shows.
        return [np.full((len(job.prompts), 1, 1), job.image[0, 0, 0], np.float32) for job in jobs]


def job(*prompts: str) -> Job:
    return Job(image=np.zeros((2, 2, 3), np.uint8), prompts=list(prompts))


def run(limits: BatchLimits, jobs: list[Job]) -> tuple[SlowFake, list]:
    fake = SlowFake()
    batcher = Batcher(fake, limits=limits)
    futures = [batcher.submit(jobs[0])]
    while not fake.calls:  # the worker is busy with the first job; the others queue behind it
        threading.Event().wait(0.01)
    futures += [batcher.submit(j) for j in jobs[1:]]
    fake.release.set()
    batcher.close()
    return fake, futures


def test_jobs_queued_during_a_forward_form_the_next_batch_within_the_image_limit():
    fake, futures = run(BatchLimits(max_images=4), [job("a")] * 7)
    assert [len(c) for c in fake.calls] == [1, 4, 2]
    assert [f.result().shape for f in futures] == [(1, 1, 1)] * 7


def test_a_batch_stops_before_it_would_hold_too_many_distinct_prompts():
    jobs = [job("a"), job("b", "c"), job("b", "c"), job("d", "e"), job("f")]
    fake, _ = run(BatchLimits(max_prompts=3), jobs)
    # "b c" twice = 2 distinct prompts; adding "d e" would make 4 > 3.
    assert [[list(j.prompts) for j in c] for c in fake.calls] == [
        [["a"]],
        [["b", "c"], ["b", "c"]],
        [["d", "e"], ["f"]],
    ]


def test_a_failing_batch_is_rerun_job_by_job():
    fake, futures = run(BatchLimits(), [job("a"), job("ok"), job("boom"), job("fine")])
    assert [len(c) for c in fake.calls] == [1, 3, 1, 1, 1]
    assert futures[1].result().shape == futures[3].result().shape == (1, 1, 1)
    with pytest.raises(ValueError, match="boom"):
        futures[2].result()


def test_close_finishes_every_queued_job_even_one_carried_over():
    fake = SlowFake()
    batcher = Batcher(fake, limits=BatchLimits(max_prompts=1))
    futures = [batcher.submit(job("a"))]
    while not fake.calls:
        threading.Event().wait(0.01)
    futures += [batcher.submit(job("b")), batcher.submit(job("c"))]
    fake.release.set()
    batcher.close()  # "c" does not fit into b's batch: it is carried over, then run before the stop
    assert [f.result(0).shape for f in futures] == [(1, 1, 1)] * 3


@pytest.mark.parametrize("bad", [False, True], ids=["one batch", "rerun job by job"])
def test_every_request_gets_its_own_result_back(bad):
    """Distinct images (pixel value = request number) and prompt counts: each future holds its own."""
    jobs = [Job(image=np.full((2, 2, 3), i, np.uint8), prompts=["p"] * (1 + i % 3)) for i in range(7)]
    if bad:
        jobs[4] = Job(image=jobs[4].image, prompts=["boom"])
    fake = SlowFake()
    batcher = Batcher(fake, limits=BatchLimits(max_images=8))
    futures = [batcher.submit(jobs[0])]
    while not fake.calls:
        threading.Event().wait(0.01)
    futures += [batcher.submit(j) for j in jobs[1:]]
    fake.release.set()
    batcher.close()
    assert len(fake.calls[1]) == 6  # the six queued requests shared one forward
    for i, (request, future) in enumerate(zip(jobs, futures)):
        if bad and i == 4:
            with pytest.raises(ValueError, match="boom"):
                future.result(0)
            continue
        result = future.result(0)
        assert result.shape == (len(request.prompts), 1, 1) and (result == i).all(), (i, result.ravel())
