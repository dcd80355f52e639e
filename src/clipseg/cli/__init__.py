"""The ``clipseg`` command: training (LightningCLI), inference, data preparation, zoo and evaluation."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import suppress
from importlib import import_module

DEFAULT_MODEL = "shapes-tiny"  # what `predict` and `serve` load without --model

# command → (module:function taking argv and returning an exit code, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("clipseg.cli.train:run_cli", "train a model (LightningCLI; see --help)"),
    "validate": ("clipseg.cli.train:run_cli", "validate a model (LightningCLI)"),
    "test": ("clipseg.cli.train:run_cli", "test a model (LightningCLI)"),
    "predict": ("clipseg.cli.predict:main", "segment images from text or image prompts"),
    "prepare": ("clipseg.cli.prepare:prepare_main", "convert a raw dataset to parquet shards"),
    "serve": ("clipseg.cli.serve:main", "web app (Gradio) and JSON API for a model, on 127.0.0.1:7860"),
    "zoo": ("clipseg.cli.zoo:main", "list, verify, fetch, pack and push zoo models"),
    "export": ("clipseg.cli.export:main", "export a model to ONNX (onnxruntime, optional int8)"),
    "calibrate": (
        "clipseg.cli.calibrate:main",
        "fit a model's presence calibration on a prepared val split",
    ),
    "eval-all": ("clipseg.cli.eval_all:main", "evaluate every local zoo model on every local benchmark"),
}
_PASS_COMMAND = {"fit", "validate", "test"}  # LightningCLI wants the subcommand itself

# The extra of pyproject.toml that installs each optional top-level module.
MODULE_EXTRAS = {
    **dict.fromkeys(("torch", "torchvision"), "torch"),
    **dict.fromkeys(
        ("lightning", "torchmetrics", "jsonargparse", "datasets", "pyarrow", "albumentations", "wandb"),
        "train",
    ),
    **dict.fromkeys(("gradio", "fastapi", "uvicorn", "multipart", "python_multipart"), "serve"),
    **dict.fromkeys(("onnxruntime", "onnx"), "onnx"),
    "ray": "ray",
}
# The extras a command needs whatever the model: named with the missing module's, so that one install
# brings all (`clipseg serve` without torch: `[torch,serve]`, not `[torch]` and then `[serve]`).
COMMAND_EXTRAS = {
    **dict.fromkeys(("fit", "validate", "test", "eval-all", "prepare", "calibrate"), ("train",)),
    "export": ("torch", "onnx"),
    "serve": ("serve",),
}
# What a user interrupting a command (Ctrl-C) should know beyond "interrupted".
INTERRUPTED = {"predict": "the outputs written so far are kept; run the same command again to resume"}
EXIT_INTERRUPTED = 130  # what a shell reports for a process ended by SIGINT


def _usage() -> str:
    lines = ["usage: clipseg COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `clipseg COMMAND --help` for the options of a command."]
    return "\n".join(lines)


def kebab_options(args: list[str]) -> list[str]:
    """``--batch_size 4`` → ``--batch-size 4``: our own commands spell options in kebab case and still
    accept the underscore spellings of earlier versions."""
    return [
        "--" + arg[2:].partition("=")[0].replace("_", "-") + "".join(arg[2:].partition("=")[1:])
        if arg.startswith("--")
        else arg
        for arg in args
    ]


def resolve(target: str) -> Callable[..., int | None]:
    """The function a ``"module:function"`` target names (imported now)."""
    module, func = target.split(":")
    return getattr(import_module(module), func)


def install_hint(command: str, err: ModuleNotFoundError) -> str | None:
    """One line saying which extra to install for ``err`` (an optional dependency missing), else ``None``."""
    module = (err.name or "").partition(".")[0]
    if module not in MODULE_EXTRAS:
        return None  # not an optional dependency: a broken install or a bug, keep the traceback
    extras = ",".join(dict.fromkeys((MODULE_EXTRAS[module], *COMMAND_EXTRAS.get(command, ()))))
    return f"{command} needs {module}, which is not installed: pip install 'clipseg[{extras}]'"


def _let_pil_open() -> None:
    """The commands are a program, so they may set PIL's process-wide limit (a library may not): raised
    to ``CLIPSEG_MAX_PIXELS``'s once, before any thread, so that clipseg's guard alone decides."""
    from clipseg.core.images import ImageError, let_pil_open, max_pixels

    with suppress(ImageError):  # a malformed CLIPSEG_MAX_PIXELS: the first image read says so, by name
        let_pil_open(max_pixels())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from clipseg import __version__

        print(f"clipseg {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"clipseg: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    _let_pil_open()
    try:
        run = resolve(COMMANDS[command][0])
        # LightningCLI commands keep Lightning's own spelling (`--trainer.max_steps`, `--ckpt_path`).
        return int(run([command, *rest] if command in _PASS_COMMAND else kebab_options(rest)) or 0)
    except ModuleNotFoundError as err:
        hint = install_hint(command, err)
        if hint is None:
            raise
        print(f"clipseg {command}: error: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        note = INTERRUPTED.get(command)
        print(f"\nclipseg {command}: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
