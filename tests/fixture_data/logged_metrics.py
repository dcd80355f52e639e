"""A callback that keeps what a run logged, for tests of runs whose logger is off or replaced.

``fast_dev_run`` swaps every logger for a dummy, so the metrics are read off the trainer instead.
Add it with ``--trainer.callbacks fixture_data.logged_metrics.RecordLoggedMetrics``.
"""

from __future__ import annotations

from typing import ClassVar

import lightning.pytorch as pl


class RecordLoggedMetrics(pl.Callback):
    """Appends ``{name: value}`` of everything logged to ``runs`` when a fit, validate or test ends."""

    runs: ClassVar[list[dict[str, float]]] = []

    def _record(self, trainer: pl.Trainer) -> None:
        self.runs.append({name: float(value) for name, value in trainer.logged_metrics.items()})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._record(trainer)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)
