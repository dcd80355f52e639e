"""What a user sees when a command cannot run: one ``error:`` line, no traceback (issue 36: defects 6, 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from net_helpers import free_port
from PIL import Image

from clipseg.backends.onnx import GRAPHS, ExportLayout
from clipseg.core.config import PreprocessConfig

# Runs `clipseg ARGS...` where the comma-separated modules of argv[1] are not installed: their finder
# answers "no such module", as in an environment without them (a plain `pip install .`).
NOT_INSTALLED = """
import importlib.machinery
import sys

BLOCKED = set(sys.argv[1].split(","))


class NotInstalled(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [NotInstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
from clipseg.cli import main

sys.exit(main(sys.argv[2:]))
"""


def run_without(modules: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", NOT_INSTALLED, modules, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def assert_one_error_line(result: subprocess.CompletedProcess, command: str, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith(f"clipseg {command}: error: "), result.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "scene.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path)
    return path


def test_predict_without_torch_names_the_torch_extra(image, tmp_path):
    result = run_without("torch", "predict", image, "--prompt", "x", "--out", tmp_path / "out")
    assert_one_error_line(result, "predict", "torch", "pip install 'clipseg[torch]'")


def test_serve_without_torch_names_both_extras(tmp_path):
    result = run_without("torch,gradio", "serve", "--port", str(free_port()), cwd=tmp_path)
    assert_one_error_line(result, "serve", "pip install 'clipseg[torch,serve]'")


def test_predict_of_an_onnx_folder_without_onnxruntime_names_the_onnx_extra(image, tmp_path):
    folder = tmp_path / "export"  # graphs are not read before onnxruntime is imported
    folder.mkdir()
    layout = ExportLayout(
        PreprocessConfig(), layers=3, deepest=2, patch_size=16, max_text_tokens=77, fixed_vocabulary=False
    )
    (folder / "config.json").write_text(layout.to_json())
    for name in GRAPHS:
        (folder / f"{name}.onnx").write_bytes(b"")
    result = run_without(
        "onnxruntime", "predict", image, "--prompt", "x", "--model", folder, "--out", tmp_path / "o"
    )
    assert_one_error_line(result, "predict", "onnxruntime", "pip install 'clipseg[onnx]'")


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("gradio,fastapi,uvicorn", ["serve", "--port", "FREE"], "serve"),
        ("torch,lightning", ["fit", "--help"], "torch,train"),
        ("lightning", ["fit", "--help"], "train"),
        ("torch,onnx,onnxruntime", ["export", "onnx", "--model", "shapes-tiny", "--out", "x"], "torch,onnx"),
        ("pyarrow,datasets", ["prepare", "shapes", "--out", "x"], "train"),
    ],
)
def test_commands_without_their_extra_say_which_to_install(tmp_path, blocked, args, extra):
    args = [str(free_port()) if arg == "FREE" else arg for arg in args]  # a free port: the error is the extra
    result = run_without(blocked, *args, cwd=tmp_path)
    assert_one_error_line(result, args[0], f"pip install 'clipseg[{extra}]'")
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_missing_module_that_no_extra_installs_keeps_its_traceback(image, tmp_path):
    result = run_without("scipy", "predict", image, "--prompt", "x", "--out", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" in result.stderr  # a broken install, not a missing extra


def test_predict_engine_ray_without_ray_names_the_ray_extra(image, tmp_path):
    out = tmp_path / "out"
    result = run_without("ray", "predict", image, "--prompt", "x", "--engine", "ray", "--out", out)
    assert_one_error_line(result, "predict", "ray", "pip install 'clipseg[ray]'")
    assert not out.exists()
