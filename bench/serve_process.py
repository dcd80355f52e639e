"""A ``clipseg serve`` child process on a free port of 127.0.0.1, ready (``/readyz`` 200) when yielded.

Shared by the load and soak benchmarks (``serve_load.py``, ``serve_soak.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def clipseg_serve(
    *options: str, log: Path, timeout_s: float = 600.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``clipseg serve --host 127.0.0.1 --port P OPTIONS``; yields its URL and process once ready.

    Its output goes to ``log``. On exit it gets SIGTERM (drain) and at most 60 s to stop.
    """
    import httpx

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "clipseg.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *options,
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"clipseg serve {' '.join(options)} did not become ready; see {log}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
