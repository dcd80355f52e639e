"""A regular (not editable) install has the shipped models: ``clipseg predict`` works from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def fresh_venv(folder: Path) -> Path:
    """A new venv without pip whose only extra path is this environment's site-packages (the dependencies).

    A path added by a ``.pth`` line does not run that folder's own ``.pth`` files, so the editable
    install of this checkout stays invisible there.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_regular_install_predicts_with_the_default_model_from_another_folder(tmp_path, scene):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    python = fresh_venv(tmp_path / "venv")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    subprocess.run([*install, "--no-build-isolation", str(source)], check=True, timeout=300)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIPSEG_", "PYTHON"))}
    where = subprocess.run(
        [python, "-c", "import clipseg; print(clipseg.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where  # the installed copy, not the checkout
    image, _ = scene
    result = subprocess.run(
        [tmp_path / "venv" / "bin" / "clipseg", "predict", image, "--prompt", "red circle", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    mask = Path(summary["images"][0]["masks"][0]["file"])
    assert summary["model"] == "shapes-tiny"
    assert (elsewhere / mask).is_file() and Image.open(elsewhere / mask).size == Image.open(image).size
