"""``clipseg serve`` as an operated service, on a real uvicorn server with a fake model: readiness after
the warm-up forward, metrics after known traffic, a bounded queue (503 + Retry-After), request
timeouts (504, the waiting job dropped), the page's busy message and the access log (issue 33)."""

from __future__ import annotations

import io
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from clipseg.inference.inputs import Job
from clipseg.serve import Batcher, BatchLimits, Busy, UploadLimits, create_app, running
from clipseg.serve.app import build_blocks
from clipseg.serve.metrics import JsonLines


class FakeModel:
    """A predictor: ``hold`` makes every forward wait for ``release``; a job with the prompt "slow"
    takes ``slow_s``; each forward sleeps ``forward_s``. ``calls`` records the prompts of each forward."""

    name = "fake"
    backend = None
    calibration = None  # no presence calibration: the API scores presence by the maximum probability

    def __init__(self, *, hold: bool = False, forward_s: float = 0.0, slow_s: float = 0.0) -> None:
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.forward_s, self.slow_s = forward_s, slow_s
        self.calls: list[list[list[str]]] = []
        self.started = threading.Event()

    def predict_each_pooled(self, jobs):
        return [(probs, None) for probs in self.predict_each(jobs)]

    def predict_each(self, jobs):
        self.calls.append([list(job.prompts) for job in jobs])
        self.started.set()
        self.release.wait(30)
        slow = any("slow" in job.prompts for job in jobs)
        time.sleep(self.slow_s if slow else self.forward_s)
        return [np.zeros((len(job.prompts), 4, 4), np.float32) for job in jobs]


def test_a_full_queue_refuses_at_once_and_a_cancelled_job_is_dropped_before_its_forward():
    model = FakeModel(hold=True)
    batcher = Batcher(model, limits=BatchLimits(max_queue=2, max_images=1))

    def submit(prompt: str):
        return batcher.submit(Job(image=np.zeros((2, 2, 3), np.uint8), prompts=[prompt]))

    submit("a")
    model.started.wait(10)  # "a" runs, held; two may wait behind it
    waiting = [submit("b"), submit("c")]
    with pytest.raises(Busy):
        submit("d")
    assert batcher.depth == 2 and not batcher.idle
    assert waiting[0].cancel()  # its request gave up
    model.release.set()
    batcher.close()
    assert model.calls == [[["a"]], [["c"]]]
    assert waiting[1].result().shape == (1, 4, 4) and waiting[1].batch_size == 1
    assert batcher.idle


def png(width: int = 32, height: int = 32, *, noise: bool = False) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8) if noise else None
    image = Image.fromarray(pixels) if noise else Image.new("RGB", (width, height), "red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def segment(url: str, prompt: str = "red square", image: bytes | None = None) -> httpx.Response:
    files = {"image": ("x.png", image or png())}
    return httpx.post(f"{url}/api/segment", files=files, data={"prompt": prompt}, timeout=60)


def wait_ready(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)


def test_ready_only_after_the_warm_up_forward_and_alive_all_along():
    model = FakeModel(hold=True)
    with running(create_app(model)) as url:
        model.started.wait(10)  # the warm-up forward runs, held
        before = httpx.get(f"{url}/readyz")
        assert before.status_code == 503 and "warming up" in before.json()["detail"]
        assert httpx.get(f"{url}/livez").status_code == 200
        model.release.set()
        wait_ready(url)
        assert model.calls[0] == [["an object"]]  # the warm-up job
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}


def samples(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_known_traffic_and_the_access_log_has_one_line_per_request(caplog):
    app = create_app(FakeModel())
    with running(app) as url, caplog.at_level(logging.INFO, logger="clipseg.access"):
        wait_ready(url)
        answers = [segment(url).status_code for _ in range(3)]
        bad = httpx.post(f"{url}/api/segment", files={"image": ("x.png", png())}, timeout=60)
        assert answers == [200] * 3 and bad.status_code == 400
        found = samples(url)
    seg = (("route", "/api/segment"),)
    assert found["clipseg_requests_total", (*seg, ("status", "200"))] == 3
    assert found["clipseg_requests_total", (*seg, ("status", "400"))] == 1
    assert found["clipseg_request_duration_seconds_count", seg] == 4
    # one forward for the warm-up and one per request (they came one at a time)
    assert found["clipseg_batch_size_count", ()] == app.state.batcher.batches == 4
    assert found["clipseg_batch_size_sum", ()] == 4
    assert found["clipseg_queue_depth", ()] == 0
    assert found["clipseg_model_info", (("backend", "builtins"), ("model", "fake"))] == 1
    lines = [r for r in caplog.records if r.name == "clipseg.access" and r.fields["route"] == "/api/segment"]
    assert [(r.fields["method"], r.fields["status"], r.fields["batch_size"]) for r in lines] == [
        ("POST", 200, 1)
    ] * 3 + [("POST", 400, 0)]
    assert lines[0].getMessage().startswith("POST /api/segment 200 ") and lines[0].getMessage().endswith(
        "ms batch=1"
    )
    assert JsonLines().format(lines[0]).startswith('{"time": ')


def test_a_full_queue_answers_503_with_retry_after_and_nothing_else_fails():
    # Each forward holds one request for 0.3 s: 40 concurrent large uploads overrun a queue of 2.
    model = FakeModel(forward_s=0.3)
    app = create_app(model, batching=BatchLimits(max_queue=2, max_images=1))
    large = png(1000, 1000, noise=True)  # about 3 MB
    with running(app) as url:
        wait_ready(url)
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda _: segment(url, image=large), range(40)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 503}, statuses
    busy = [a for a in answers if a.status_code == 503]
    assert all(a.headers.get("retry-after") == "1" and "busy" in a.json()["detail"] for a in busy)
    assert app.state.batcher.largest == 1


def test_a_request_past_its_timeout_gets_504_and_a_waiting_one_is_dropped_from_the_batch():
    model = FakeModel(slow_s=2.0)
    app = create_app(model, batching=BatchLimits(timeout_s=0.5))
    with running(app) as url:
        wait_ready(url)
        with ThreadPoolExecutor(2) as pool:
            model.started.clear()
            running_one = pool.submit(segment, url, "slow")
            model.started.wait(10)  # its forward runs; the next request waits behind it
            waiting = pool.submit(segment, url, "dropped")
            late = [running_one.result(), waiting.result()]
        assert [a.status_code for a in late] == [504, 504]
        assert "not answered within 0.5 s" in late[1].json()["detail"]
        deadline = time.monotonic() + 20
        while not app.state.batcher.idle:  # the slow forward finishes for nobody
            assert time.monotonic() < deadline, "the worker never became idle"
            time.sleep(0.05)
        assert segment(url, "after").status_code == 200  # the worker lives on
    assert [prompts for call in model.calls for prompts in call] == [["an object"], ["slow"], ["after"]]


def test_the_page_says_the_server_is_busy_when_the_queue_is_full(tmp_path):
    batcher = Batcher(FakeModel(), limits=BatchLimits(max_queue=0))
    blocks = build_blocks(batcher, UploadLimits(), tmp_path)
    page = next(f.fn for f in blocks.fns.values() if f.name == "segment")
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(gr.Error) as caught:
        page(image, "red square", None, None, 0, "", "none", 0, 0, False, 0, 0, "none", False)
    assert caught.value.title == "Server busy" and "busy" in caught.value.message
    batcher.close()
