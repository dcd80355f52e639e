"""One help style for every ``clipseg`` command (argparse), and the option vocabulary they share.

Vocabulary: a model is ``--model MODEL`` (zoo name, model file or folder, ONNX export, hub repo id or
``.ckpt``); worker processes are ``--workers N``; ``--overwrite`` is a flag; folders are ``DIR``, files
``FILE``, either ``PATH``; counts ``N``, sizes in pixels ``PX``. Old spellings stay as hidden aliases.
"""

from __future__ import annotations

import argparse

MODEL_HELP = (
    "zoo name, model file (.safetensors, .pth) or folder, ONNX export folder, hub repo id or "
    "`clipseg fit` checkpoint (.ckpt)"
)
DEVICE_HELP = "cpu, cuda, cuda:1, ... (default: cuda if available)"
REVISION_HELP = "hub branch, tag or commit (hub models; default: the zoo card's, else main)"


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs of several lines as written (one line is wrapped); every option with a
    default worth knowing says it.

    A default is worth knowing unless it is ``None``, ``False``, ``0`` or empty (nothing given, off), or
    the help already says it ("default").
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():  # laid out by hand: a table, commands
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or (isinstance(default, list | tuple) and not default)
        ):
            return text
        return f"{text} (default: %(default)s)"


def hidden_alias(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, new: str, **kwargs
) -> None:
    """Accept the earlier spelling ``old`` of the option ``new`` (same destination), without listing it."""
    dest = new.lstrip("-").replace("-", "_")
    parser.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
