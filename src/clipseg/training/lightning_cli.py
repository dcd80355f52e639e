"""LightningCLI behind ``clipseg fit|validate|test`` and ``lightning fit|validate|test`` (the ``lightning``
console script). ``clipseg predict``, masks for images, is not Lightning's: it lives in ``clipseg.cli``.

On top of LightningCLI:

- ``--config NAME`` is a file, or a config shipped in the package (``--config finetune`` or
  ``configs/finetune.yaml`` from any folder, see ``find_config``);
- ``--config FILE`` follows a top-level ``base: OTHER.yaml`` in FILE (relative to FILE, recursively),
  so each experiment YAML holds only what differs from the file it builds on;
- ``--name`` names the run: checkpoints go to ``<output_root>/<name>/checkpoints`` and wandb runs to
  ``<output_root>/<name>/wandb`` (``--output_root`` defaults to ``$CLIPSEG_OUTPUTS`` or ``outputs``);
- ``${NAME:-default}`` in the datamodule's string arguments is replaced by the environment variable
  (so YAMLs say ``data_dir: ${CLIPSEG_DATA:-data}/phrasecut`` instead of a fixed path);
- ``--wandb_mode offline|online|disabled`` (offline by default; ``wandb sync`` uploads later);
- precision left unset is decided at start: bf16-mixed on GPUs that support it, 16-mixed on other
  GPUs, 32-true on CPUs; ``--trainer.strategy ddp`` finds unused parameters when the backbone trains;
- ``checkpoint`` (``last.ckpt``), ``best_checkpoint`` and ``overlays`` callbacks are configurable keys;
- a backbone that cannot be loaded (offline hub name, missing folder) or a value rejected while building
  the classes ends with one message and exit code 2, leaving no run folder;
- a fresh ``fit`` into a run folder that holds checkpoints is refused unless ``--ckpt_path`` resumes it
  or ``--overwrite`` starts it over;
- the training bar counts steps of ``max_steps``; known dependency warnings and tips are silenced.

The entry points of both commands (one error line and an exit code) are in ``clipseg.cli.train``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import ActionConfigFile, Namespace
from lightning import LightningDataModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from clipseg.training.callbacks import LastCheckpoint, SampleOverlays, StepProgressBar
from clipseg.training.module import ClipSegModule
from clipseg.zoo.errors import ZooError


class ConfigurationError(ValueError):
    """A config value that parsing could not check but building the classes rejected."""


_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand_env(value: str) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in ``value`` by environment variables.

    Raises:
        ValueError: ``NAME`` is unset and has no default.
    """

    def lookup(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ConfigurationError(
                f"{value!r} needs the environment variable {name} (or write ${{{name}:-default}})"
            )
        return default

    return _ENV_REFERENCE.sub(lookup, value)


def config_chain(value: Any, seen: tuple[Path, ...] = ()) -> list[Any]:
    """``value`` preceded by the chain of files its ``base:`` keys name, root first."""
    path = Path(str(value))
    if not path.is_file():  # an inline YAML string: no base to follow
        return [value]
    path = path.resolve()
    if path in seen:
        raise ValueError(
            f"config files include each other in a cycle: {' -> '.join(map(str, (*seen, path)))}"
        )
    content = yaml.safe_load(path.read_text()) or {}
    base = content.get("base") if isinstance(content, dict) else None
    parents = config_chain(path.parent / base, (*seen, path)) if base else []
    return [*parents, str(path)]


# The experiment configs, shipped in the package (the repository's `configs/` links here).
SHIPPED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def find_config(value: str) -> str:
    """``value``, or the shipped config it names when no such file exists here: ``finetune``,
    ``finetune.yaml`` or the documented ``configs/finetune.yaml`` (for installs without the repository).

    Raises:
        ConfigurationError: ``value`` looks like a config file's name but is neither a file nor shipped.
    """
    path = Path(str(value))
    if path.is_file() or any(c in str(value) for c in "\n:{"):  # a file, or inline YAML
        return value
    if path.suffix in ("", ".yaml") and str(path.parent) in (".", "configs"):
        shipped = SHIPPED_CONFIGS / f"{path.stem}.yaml"
        if shipped.is_file():
            return str(shipped)
    names = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml")))
    raise ConfigurationError(f"--config {value}: no such file, and no shipped config of that name ({names})")


class ConfigWithBase(ActionConfigFile):
    """``--config FILE`` where FILE may build on another with a top-level ``base: OTHER.yaml``; FILE may
    also name a shipped config (``find_config``)."""

    def __call__(self, parser, cfg, values, option_string=None) -> None:
        for value in config_chain(find_config(values)):
            self.apply_config(parser, cfg, self.dest, value)
        if "base" in cfg:  # applied: a saved config must not point at a file relative to where it was written
            cfg["base"] = None


class BestCheckpoint(ModelCheckpoint):
    """Keeps the checkpoint with the lowest ``monitor`` (``best-step=N.ckpt``), checked after each validation.

    Args:
        dirpath: folder of the checkpoint (the CLI fills in ``outputs/<name>/checkpoints``).
        monitor: logged metric to rank by; validation always logs ``val/loss``.
        mode: "min" or "max".
    """

    def __init__(self, *, dirpath: str | None = None, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(dirpath=dirpath, monitor=monitor, mode=mode, filename="best-{step}", save_top_k=1)


_UNION_FAILURE = "Does not validate against any of the Union subtypes"


def union_reason(message: str) -> str:
    """The reason inside jsonargparse's "does not validate against any of the Union subtypes" message.

    An optional value (``model.config: ClipSegConfig | None``) that fails its own checks is reported
    as a union failure listing one error per subtype; the one that is not "expected None" is the reason.
    Other messages are returned unchanged.
    """
    if not message.startswith(_UNION_FAILURE):
        return message
    reasons = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    useful = [r for r in reasons if "NoneType" not in r]
    return useful[0] if useful else message


def auto_precision(accelerator: Any) -> str:
    """The training precision for ``accelerator``: mixed bf16 / fp16 on CUDA GPUs, full fp32 elsewhere."""
    if str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


class ClipSegCLI(LightningCLI):
    """LightningCLI for ``ClipSegModule`` and any ``LightningDataModule`` (chosen by ``data.class_path``)."""

    def __init__(self, args: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(
            ClipSegModule,
            LightningDataModule,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},  # resuming a run rewrites its config.yaml
            auto_configure_optimizers=False,  # the module's AdamW + cosine is the paper's
            args=args,
            **kwargs,
        )

    _folders_to_create: list[Path]

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("dump_header", ["clipseg LightningCLI config"])
        parser = self.parser_class(**kwargs)
        parser.add_argument(
            "-c", "--config", action=ConfigWithBase, help="Path to a YAML config (may name a `base`)."
        )
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--base", type=str | None, default=None, help="Config file this one builds on.")
        parser.add_argument(
            "--name", type=str, default="clipseg", help="Run name: output folder and wandb name."
        )
        parser.add_argument(
            "--output_root",
            type=str,
            default=os.environ.get("CLIPSEG_OUTPUTS", "outputs"),
            help="Folder of all runs (default $CLIPSEG_OUTPUTS or ./outputs).",
        )
        parser.add_argument(
            "--wandb_mode",
            type=str,
            default="offline",
            choices=["offline", "online", "disabled"],
            help="offline: runs saved locally for `wandb sync`; online: streamed; disabled: no wandb logger.",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            nargs="?",
            const=True,  # a flag, as in the other commands; `--overwrite true|false` still works
            default=False,
            help="fit: start over in a run folder that already holds checkpoints (they are deleted); "
            "`--overwrite` alone means true.",
        )
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.add_lightning_class_args(BestCheckpoint, "best_checkpoint")
        parser.add_lightning_class_args(SampleOverlays, "overlays")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with ``StepProgressBar`` as its bar unless the config disables bars or names one."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = kwargs.get("callbacks", config.get("callbacks")) or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]  # one or a list
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            kwargs["callbacks"] = [*callbacks, StepProgressBar()]
        return super().instantiate_trainer(**kwargs)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        run_dir = Path(cfg.output_root) / cfg.name
        self._folders_to_create = []
        if cfg.trainer.default_root_dir is None:
            cfg.trainer.default_root_dir = str(run_dir)
        for key in ("checkpoint", "best_checkpoint"):
            if cfg[key].dirpath is None:
                cfg[key].dirpath = str(run_dir / "checkpoints")
        data_args = cfg.data.get("init_args") if isinstance(cfg.data, Namespace) else None
        for key, value in (data_args or {}).items():
            if isinstance(value, str):
                data_args[key] = expand_env(value)
        if self.subcommand == "fit":
            self._stale_checkpoints = self._checkpoints_of_earlier_run(cfg, run_dir)
        if cfg.trainer.precision is None:
            cfg.trainer.precision = auto_precision(cfg.trainer.accelerator)
        if cfg.trainer.strategy == "ddp" and not cfg.model.config.freeze_backbone:
            # A trained CLIP has parameters some batches leave unused (the visual-prompt branch when no
            # sample has a support image, the contrastive logit scale always); plain DDP rejects that.
            cfg.trainer.strategy = "ddp_find_unused_parameters_true"
        self._configure_wandb(cfg, run_dir)

    @staticmethod
    def _checkpoints_of_earlier_run(cfg: Namespace, run_dir: Path) -> list[Path]:
        """Checkpoints a fresh ``fit`` would write beside: refused unless resuming or ``--overwrite``.

        Without this, a second run under the same name writes ``last-v1.ckpt`` next to the first
        run's ``last.ckpt`` and replaces its ``config.yaml``, so ``--ckpt_path last`` and ``clipseg zoo pack`` pick
        the wrong run.
        """
        folders = {Path(cfg[key].dirpath) for key in ("checkpoint", "best_checkpoint")}
        found = sorted(
            (path for folder in folders if folder.is_dir() for path in folder.glob("*.ckpt")),
            key=lambda path: (path.name != "last.ckpt", path.name),  # name last.ckpt first
        )
        if not found or cfg.ckpt_path is not None:
            return []
        if not cfg.overwrite:
            raise ConfigurationError(
                f"{run_dir} already holds a run ({found[0]}). Resume it with `--ckpt_path last`, start it "
                "over with `--overwrite` (deletes its checkpoints), or name this run with `--name`."
            )
        return found

    def instantiate_classes(self) -> None:
        # Values the parser cannot type-check (the backbone's CLIPConfig dict, ClipSegConfig's own
        # checks) fail while the classes are built: report them as one message, like parse errors.
        try:
            super().instantiate_classes()
        except (TypeError, ValueError) as err:
            raise ConfigurationError(f"{type(err).__name__}: {union_reason(str(err))}") from err
        except ZooError as err:  # the only model a run loads by name: a typo, an image file, ...
            raise ConfigurationError(f"model.init_from: {err}") from err
        # Only now that everything is built: a run that cannot start leaves no folder behind.
        for folder in self._folders_to_create:
            folder.mkdir(parents=True, exist_ok=True)

    def before_fit(self) -> None:
        for path in getattr(self, "_stale_checkpoints", []):  # `--overwrite`: the old run goes
            path.unlink(missing_ok=True)

    def _configure_wandb(self, cfg: Namespace, run_dir: Path) -> None:
        logger = cfg.trainer.logger
        if not isinstance(logger, Namespace) or not str(logger.get("class_path", "")).endswith("WandbLogger"):
            return
        if cfg.wandb_mode == "disabled":
            cfg.trainer.logger = False
            return
        args = logger.init_args
        args.offline = cfg.wandb_mode == "offline"
        # Under the run folder rather than ./wandb: Lightning writes config.yaml into the logger's save_dir.
        if args.get("save_dir") in (None, "."):
            args.save_dir = str(run_dir)
        if args.get("name") is None:
            args.name = cfg.name
        self._folders_to_create.append(Path(args.save_dir))


# Messages of our dependencies that say nothing about this project's runs (checked by a test of a short fit).
_NOISE_WARNINGS = (
    r"LightningCLI's args parameter",  # `clipseg fit ...` passes its own argv while sys.argv is set too
    r".*isinstance\(treespec, LeafSpec\)",  # Lightning 2.6 on torch 2.13, inside Lightning
    r"Your `IterableDataset` has `__len__` defined",  # our streams shard per rank and worker themselves
    r"Checkpoint directory .* exists and is not empty",  # checked before: resume or --overwrite only
)


class _DropTips(logging.Filter):
    """Drops Lightning's advertisements ("💡 Tip: ... try installing litlogger / litmodels")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_dependency_noise() -> None:
    """Silence the warnings and tips of ``_NOISE_WARNINGS`` / ``_DropTips`` (ours to silence: they are
    about how this project uses its dependencies, not about the user's run)."""
    for message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # where `rank_zero_info` logs
    if not any(isinstance(f, _DropTips) for f in tips.filters):
        tips.addFilter(_DropTips())
