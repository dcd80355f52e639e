"""The command line a new user meets: fast help, one option style, readable help, install once (issue 15)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from clipseg.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["predict", "--help"],
        ["prepare", "--help"],
        ["zoo", "--help"],
        ["zoo", "list"],
        ["serve", "--help"],
        ["export", "--help"],
        ["export", "onnx", "--help"],
    ],
)
def test_help_and_zoo_list_import_neither_torch_nor_lightning(args):
    code = (
        "import sys\nfrom clipseg.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'transformers', 'gradio') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit):
        main([*args, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        ["predict"],
        ["prepare"],
        ["eval-all"],
        ["zoo", "export"],
        ["zoo", "verify"],
        ["serve"],
        ["export", "onnx"],
    ],
)
def test_our_commands_spell_options_in_kebab_case_and_show_no_rest_markup(capsys, command):
    text = _help(capsys, *command)
    assert not re.findall(r"--[a-z]+_[a-z_]+", text), text
    assert "``" not in text


def test_old_underscore_spellings_still_work():
    from clipseg.cli import kebab_options

    assert kebab_options(["--batch_size", "4", "--data_root=/x", "a_b", "--prompt-image"]) == [
        "--batch-size",
        "4",
        "--data-root=/x",
        "a_b",
        "--prompt-image",
    ]


def test_make_installs_once_and_again_only_when_pyproject_changes(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("")
    stamp = venv / ".installed"
    stamp.write_text("")

    def dry_run() -> str:
        return subprocess.run(
            ["make", "-n", "-C", str(ROOT), f"VENV={venv}", "install"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "pip install" not in dry_run()
    pyproject = ROOT / "pyproject.toml"
    old = pyproject.stat().st_mtime - 10
    os.utime(stamp, (old, old))  # the stamp is older than pyproject.toml: dependencies may have changed
    assert "pip install" in dry_run()


def test_license_is_an_spdx_string():
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"
