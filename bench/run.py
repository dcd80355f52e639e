"""Run every ``bench/*_bench.py`` in turn (``make bench``); extra arguments (e.g. ``--quick``) go to each."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    scripts = sorted(Path(__file__).resolve().parent.glob("*_bench.py"))
    failed = []
    for script in scripts:
        print(f"=== {script.name} {' '.join(sys.argv[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *sys.argv[1:]])
        print(
            f"=== {script.name}: {'ok' if code == 0 else f'exit {code}'} in {time.perf_counter() - start:.0f}s\n",
            flush=True,
        )
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
