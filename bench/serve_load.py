"""Load figures of ``clipseg serve`` with locust (headless), against 127.0.0.1 only, bounded in time.

For each backend (torch; ONNX int8) a ``clipseg serve --model shapes-tiny`` child process runs, and
locust's users (``locustfile_serve.py``: the example image, two prompts, no think time) load it for
``--seconds`` at each user count. Prints requests/s, p50/p95/p99 latency (ms) and the error count
per run, as a markdown table (``make bench-serve-load``).

    python bench/serve_load.py [--seconds 60] [--users 8 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from serve_process import clipseg_serve

HERE = Path(__file__).resolve().parent
BACKENDS = {"torch": ("--backend", "torch"), "onnx-int8": ("--backend", "onnx", "--quantize", "int8")}


def locust(url: str, users: int, seconds: int, prefix: Path) -> dict[str, str]:
    """One headless locust run; the aggregated row of its stats CSV."""
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile_serve.py"), "--headless",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--host", url,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "30", "--loglevel", "WARNING",
    ]  # fmt: skip
    with open(f"{prefix}.log", "w") as log:  # locust's own summary and warnings
        subprocess.run(command, check=False, stdout=log, stderr=log, timeout=seconds + 120)
    with open(f"{prefix}_stats.csv") as stats:
        return next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60, help="length of each run")
    parser.add_argument("--users", type=int, nargs="+", default=[8, 32], help="concurrent users per run")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--threads", type=int, default=1, help="--threads of the server")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    print(
        f"shapes-tiny, {args.seconds} s per run, server --threads {args.threads}, load {os.getloadavg()[0]:.1f}"
    )
    print("| backend | users | requests/s | p50 ms | p95 ms | p99 ms | requests | errors |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            options = ("--model", "shapes-tiny", "--threads", str(args.threads), *BACKENDS[backend])
            with clipseg_serve(*options, log=Path(tmp) / f"{backend}.log") as (url, _):
                for users in args.users:
                    row = locust(url, users, args.seconds, Path(tmp) / f"{backend}-{users}")
                    print(
                        f"| {backend} | {users} | {float(row['Requests/s']):.1f} | {row['50%']} | {row['95%']} "
                        f"| {row['99%']} | {row['Request Count']} | {row['Failure Count']} |",
                        flush=True,
                    )
    print(f"load average after: {os.getloadavg()[0]:.1f} (2 shared cores)")


if __name__ == "__main__":
    main()
