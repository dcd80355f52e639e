"""Soak of ``clipseg serve``: 5,000 ``POST /api/segment`` in a row; the server's resident memory at
request 500 and at the end (growth must stay under 10 %).

A ``clipseg serve --model shapes-tiny`` child process on 127.0.0.1; one client sends the example
image with two prompts, one request after the other, each must answer 200. The server's RSS is read
from ``/proc/PID/status``. Exit code 1 when the growth is 10 % or more.

    python bench/serve_soak.py [--requests 5000] [--backend torch]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from serve_process import clipseg_serve

IMAGE = Path(__file__).resolve().parent.parent / "src/clipseg/assets/example.png"
MAX_GROWTH = 0.10


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests in a row")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import httpx

    image = IMAGE.read_bytes()
    checkpoint = args.requests // 10
    with tempfile.TemporaryDirectory() as tmp:
        options = ("--model", "shapes-tiny", "--backend", args.backend, "--threads", "1")
        with clipseg_serve(*options, log=Path(tmp) / "serve.log") as (url, process), httpx.Client() as client:
            start = time.perf_counter()
            for i in range(1, args.requests + 1):
                response = client.post(
                    f"{url}/api/segment",
                    files={"image": ("example.png", image)},
                    data={"prompt": ["red square", "blue circle"]},
                    timeout=60,
                )
                if response.status_code != 200:
                    print(f"request {i}: {response.status_code} {response.text}")
                    return 1
                if i == checkpoint:
                    early = rss_mb(process.pid)
            late = rss_mb(process.pid)
            seconds = time.perf_counter() - start
    growth = late / early - 1
    print(
        f"{args.requests} requests ({args.backend}, shapes-tiny) in {seconds:.0f} s: RSS {early:.1f} MiB at "
        f"request {checkpoint}, {late:.1f} MiB at {args.requests}: growth {growth:+.1%} (limit {MAX_GROWTH:.0%})"
    )
    return 0 if growth < MAX_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
