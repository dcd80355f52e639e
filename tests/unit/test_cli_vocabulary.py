"""Every option of every ``clipseg`` command has help text, shows its default and follows one vocabulary
(``clipseg.core.help``): ``--model MODEL``, ``--workers N``, ``--overwrite`` a flag (issue 36, defect 18)."""

from __future__ import annotations

import argparse

import pytest

from clipseg.cli import COMMANDS, main

LIGHTNING = {"fit", "validate", "test"}  # LightningCLI's options keep Lightning's spelling
METAVARS = {  # what each kind of value is called, in every command
    "MODEL", "DIR", "FILE", "PATH", "PATH[:MASK]", "N", "PX", "P", "MB", "TEXT", "NAME", "ID", "ORG/NAME",
    "KEY=VALUE", "SPLIT", "ADDRESS", "DEVICE", "REVISION", "FMT", "FRAMES",
}  # fmt: skip
SAME_METAVAR = {"--model": {"MODEL"}, "--out": {"DIR", "PATH"}, "--workers": {"N"}, "--batch-size": {"N"}}


class Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def capture(monkeypatch, command: str) -> argparse.ArgumentParser:
    """The parser ``clipseg COMMAND`` builds, taken where it would parse."""

    def take(self, *args, **kwargs):
        raise Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", take)
    with pytest.raises(Captured) as caught:
        main([command])
    monkeypatch.undo()
    return caught.value.parser


def with_subcommands(name: str, parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {name: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                found |= with_subcommands(f"{name} {sub}", subparser)
    return found


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    monkeypatch = pytest.MonkeyPatch()
    found: dict[str, argparse.ArgumentParser] = {}
    for command in COMMANDS:
        if command not in LIGHTNING:
            found |= with_subcommands(command, capture(monkeypatch, command))
    return found


def options(parsers):
    for name, parser in parsers.items():
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                yield name, parser, action


def test_every_option_of_every_command_has_help(parsers):
    assert {"predict", "serve", "prepare", "eval-all", "zoo export", "export onnx"} <= set(parsers)
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, _, action in options(parsers)
        if not action.help or not action.help.strip()
    ]
    assert missing == []


def test_every_default_worth_knowing_is_shown(parsers):
    hidden = []
    for name, parser, action in options(parsers):
        shown = parser._get_formatter()._get_help_string(action)
        worth_knowing = action.default not in (None, False, [])  # 0 is False: "off"
        if (
            action.option_strings
            and action.help != argparse.SUPPRESS
            and worth_knowing
            and "default" not in shown
        ):
            hidden.append(f"{name} {action.option_strings[0]} (default {action.default!r})")
    assert hidden == []


def test_metavars_and_flags_follow_the_vocabulary(parsers):
    wrong = []
    for name, _, action in options(parsers):
        if (
            not action.option_strings
            or action.nargs == 0
            or action.choices
            or action.help == argparse.SUPPRESS
        ):
            continue
        metavar = action.metavar or action.dest.upper()
        if metavar not in METAVARS or metavar not in SAME_METAVAR.get(action.option_strings[0], {metavar}):
            wrong.append(f"{name} {action.option_strings[0]} {metavar}")
    assert wrong == []
    visible = {o for _, _, a in options(parsers) if a.help != argparse.SUPPRESS for o in a.option_strings}
    assert not visible & {"--num-workers", "--num_workers"}  # one name for worker processes: --workers
    flags = [(name, a.nargs) for name, _, a in options(parsers) if "--overwrite" in a.option_strings]
    assert flags and all(nargs == 0 for _, nargs in flags), flags  # a flag, never `--overwrite true`


def test_old_spellings_stay_as_hidden_aliases(parsers):
    parser = parsers["eval-all"]
    assert parser.parse_args(["--num-workers", "3"]).workers == 3
    assert parser.parse_args([]).workers == 2
    assert "--num-workers" not in parser.format_help()
