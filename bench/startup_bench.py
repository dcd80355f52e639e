"""Start-up of the ``clipseg`` command: ``--help`` against ``import torch``, and an ONNX prediction's imports.

Each command runs in a fresh process, ``--repeats`` times interleaved (so a busy shared CPU hits all
alike); the median and best wall times are printed. Goal (issue 36): ``clipseg predict --help`` in
under half the time of ``python -c "import torch"``, and ``clipseg predict --model <ONNX export>``
importing neither torch nor transformers (which imports torch) in a full install.

    python bench/startup_bench.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

GOAL = 0.5  # help time / `import torch` time
LOADED = "import sys; import runpy; sys.argv = ['clipseg', *sys.argv[1:]]\n" + (
    "try:\n    runpy.run_module('clipseg.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
    "print('LOADED', sorted(m for m in ('torch', 'transformers') if m in sys.modules), file=sys.stderr)\n"
)


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        export, image = Path(tmp) / "onnx", Path(tmp) / "scene.png"
        subprocess.run(
            [python, "-m", "clipseg.cli", "export", "onnx", "--model", "shapes-tiny", "--out", str(export)],
            check=True,
            capture_output=True,
        )
        Image.fromarray(np.full((96, 128, 3), 128, np.uint8)).save(image)
        onnx = [
            "predict",
            str(image),
            "--prompt",
            "red circle",
            "--model",
            str(export),
            "--out",
            f"{tmp}/out",
        ]
        commands = {
            "import torch": [python, "-c", "import torch"],
            "clipseg --help": [python, "-m", "clipseg.cli", "--help"],
            "clipseg predict --help": [python, "-m", "clipseg.cli", "predict", "--help"],
            "clipseg serve --help": [python, "-m", "clipseg.cli", "serve", "--help"],
            "clipseg predict (ONNX export)": [python, "-c", LOADED, *onnx, "--overwrite"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        loaded = ""
        for _ in range(repeats):
            for name, command in commands.items():
                seconds, stderr = timed(command)
                times[name].append(seconds)
                loaded = next((line for line in stderr.splitlines() if line.startswith("LOADED")), loaded)
    for name, runs in times.items():
        print(f"{name:<32} median {statistics.median(runs):6.2f} s   best {min(runs):6.2f} s")
    ratio = statistics.median(times["clipseg predict --help"]) / statistics.median(times["import torch"])
    print(f"predict --help / import torch: {ratio:.2f} (goal < {GOAL}); ONNX predict imported: {loaded[7:]}")
    return 0 if ratio < GOAL and loaded == "LOADED []" else 1


if __name__ == "__main__":
    sys.exit(main())
