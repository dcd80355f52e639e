"""Every name the registries hand out resolves: each ``clipseg`` command (and console script) to a
callable in ``clipseg.cli``, each ``clipseg prepare`` dataset to a reader, before a user types it."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from clipseg.cli import COMMANDS, main, resolve
from clipseg.data.prepare import READERS, load_reader

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_an_entry_point_of_clipseg_cli(command):
    target = COMMANDS[command][0]
    assert target.startswith("clipseg.cli."), f"{command}: {target} is not in clipseg.cli"
    assert callable(resolve(target))


SCRIPTS = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_console_script_is_an_entry_point_of_clipseg_cli(script):
    target = SCRIPTS[script]
    assert target.startswith("clipseg.cli"), f"{script}: {target} is not in clipseg.cli"
    assert callable(resolve(target))


def test_help_lists_every_registered_command(capsys):
    assert main(["--help"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("dataset", sorted(READERS))
def test_every_dataset_resolves_to_a_reader(dataset):
    reader, fixed, splits = load_reader(dataset)
    assert callable(reader) and isinstance(fixed, dict) and splits
