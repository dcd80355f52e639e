"""Ctrl-C during a folder run: one line that says a rerun resumes, exit 130, no traceback (issue 36, defect 8)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

INPUTS = 400  # far more than get done before the interrupt


def test_ctrl_c_during_a_folder_run_is_one_line_and_exit_130(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(INPUTS):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), np.uint8)).save(photos / f"{i:03d}.png")
    command = [sys.executable, "-m", "clipseg.cli", "predict", str(photos), "--prompt", "red circle"]
    process = subprocess.Popen(
        [*command, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A terminal's Ctrl-C: SIGINT with Python's default handler (a background shell job ignores it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(out.rglob("*_overlay.png")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("clipseg predict: interrupted;") and "again to resume" in last, err[-3000:]
    assert len(list(out.rglob("*_overlay.png"))) < INPUTS  # it was stopped, not finished
