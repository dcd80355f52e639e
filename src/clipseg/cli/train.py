"""``clipseg fit|validate|test`` and the ``lightning`` console script: ``ClipSegCLI``
(``clipseg.training.lightning_cli``) with its errors turned into one line and an exit code."""

from __future__ import annotations

import sys

from clipseg.core.errors import BackboneUnavailableError, NoShards
from clipseg.training.lightning_cli import ClipSegCLI, ConfigurationError, quiet_dependency_noise

SIGTERM_EXIT = 143  # what a shell reports for a process ended by SIGTERM


def run_cli(argv: list[str] | None = None) -> int:
    """Run a LightningCLI subcommand (``argv`` like ``["fit", "--config", "configs/vitb16.yaml"]``).

    Returns the exit code: 0 done, 2 configuration problem, 143 stopped by SIGTERM (``last.ckpt`` saved).
    """
    # Imported here, after the training room (which imports torch first): without torch, the
    # missing-extra line names torch and train together (`clipseg[torch,train]`), not train alone.
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    quiet_dependency_noise()
    try:
        ClipSegCLI(args=argv)
    except BackboneUnavailableError as err:
        print(
            f"error: {err}\nIn a config that is `model.config.backbone` (`--model.config.backbone FOLDER`).",
            file=sys.stderr,
        )
        return 2
    except (ConfigurationError, NoShards) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SIGTERMException:
        print("stopped by SIGTERM; continue with --ckpt_path last", file=sys.stderr)
        return SIGTERM_EXIT
    return 0


def lightning_main() -> None:
    """Entry point of the ``lightning`` console script."""
    sys.exit(run_cli())


if __name__ == "__main__":
    lightning_main()
