"""SIGTERM on a real ``clipseg serve`` process with 3 requests in flight: ``/readyz`` turns 503, new
work gets 503, the 3 accepted requests are answered 200, the process exits 0 (issue 33)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from net_helpers import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "clipseg" / "assets" / "example.png"
UPLOAD_S = 3.0  # each body trickles in over this long: the requests are surely in flight at SIGTERM


def slow_upload(url: str) -> httpx.Response:
    """``POST /api/segment`` with the example image, the body sent in 10 pieces over ``UPLOAD_S``."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nred square\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + EXAMPLE.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def pieces() -> Iterator[bytes]:
        step = len(body) // 10 + 1
        for start in range(0, len(body), step):
            yield body[start : start + step]
            time.sleep(UPLOAD_S / 10)

    headers = {"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(len(body))}
    return httpx.post(f"{url}/api/segment", content=pieces(), headers=headers, timeout=60)


@pytest.mark.slow  # a real server process: torch, Gradio and the model load first (about 30 s here)
def test_sigterm_answers_the_requests_in_flight_refuses_new_ones_and_exits_0(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "clipseg.cli", "serve", "--model", "shapes-tiny", "--port", str(port)]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        with ThreadPoolExecutor(3) as pool:
            in_flight = [pool.submit(slow_upload, url) for _ in range(3)]
            time.sleep(UPLOAD_S / 3)  # every upload has begun, none has ended
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # uvicorn's loop sees the signal within a tick
            assert not any(f.done() for f in in_flight)
            readyz = httpx.get(f"{url}/readyz")
            refused = httpx.post(f"{url}/api/segment", files={"image": ("x.png", b"x")}, data={"prompt": "x"})
            answers = [f.result() for f in in_flight]
        assert readyz.status_code == 503 and "draining" in readyz.json()["detail"]
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
        assert process.wait(60) == 0, log.read_text()
        assert "POST /api/segment 200" in log.read_text()  # the access log
    finally:
        if process.poll() is None:
            process.kill()
