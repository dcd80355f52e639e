"""The benchmarks of ``make eval-all``: where their prepared shards live and which protocol scores them.

Data lives under one root (``--data-root``, default ``$CLIPSEG_DATA`` or ``./data``), one folder per
benchmark where ``clipseg prepare <dataset>`` writes it (``clipseg.data.paths``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning import LightningDataModule

from clipseg.data.datamodules import (
    FewShotDataModule,
    PhraseCutDataModule,
    RefMatteDataModule,
    ShapesDataModule,
    ZeroShotDataModule,
)
from clipseg.data.paths import prepared_dir

# datamodule(data root, common keyword arguments) -> LightningDataModule
DataModuleFactory = Callable[[Path, dict[str, Any]], LightningDataModule]


@dataclass(frozen=True)
class Benchmark:
    """One evaluation: a datamodule's ``test`` split scored with a ``clipseg.training.evaluation.PROTOCOLS`` protocol.

    Args:
        name: result key, e.g. "pascal5i-fold0" (paper numbers are keyed ``<name>/<metric>``).
        protocol: "referring", "fewshot", "zeroshot" or "matting".
        datamodule: builds the datamodule from the data root and common arguments.
        data: folder below the root whose ``manifest.json`` marks prepared data (``None``: generated).
    """

    name: str
    protocol: str
    datamodule: DataModuleFactory
    data: str | None

    def missing_data(self, root: Path) -> str | None:
        """Why this benchmark cannot run from ``root``, or ``None`` if its data is there."""
        if self.data is None or (root / self.data / "manifest.json").is_file():
            return None
        return f"no prepared data at {root / self.data} (see `clipseg prepare`)"


def _fewshot(name: str, fold: int) -> Benchmark:
    folder = prepared_dir(name, {"fold": fold}, root=Path())

    def build(root: Path, common: dict[str, Any]) -> LightningDataModule:
        return FewShotDataModule(benchmark=name, fold=fold, data_dir=str(root / folder), **common)

    return Benchmark(f"{name}-fold{fold}", "fewshot", build, f"{folder.as_posix()}/test")


def _zeroshot(n_unseen: int) -> Benchmark:
    folder = prepared_dir("pascal-zeroshot", root=Path())

    def build(root: Path, common: dict[str, Any]) -> LightningDataModule:
        return ZeroShotDataModule(n_unseen=n_unseen, data_dir=str(root / folder), **common)

    return Benchmark(f"pascal-zeroshot-{n_unseen}", "zeroshot", build, f"{folder.as_posix()}/val")


def _refmatte(setting: str) -> Benchmark:
    split = "rw100" if setting == "rw100" else "test"
    folder = prepared_dir("refmatte", {"setting": setting}, splits=[split], root=Path())

    def build(root: Path, common: dict[str, Any]) -> LightningDataModule:
        # The data module reads <data_dir>/<setting>: hand it the folder above the setting's.
        return RefMatteDataModule(setting=setting, data_dir=str(root / folder.parent), **common)

    return Benchmark(f"refmatte-{setting}", "matting", build, f"{folder.as_posix()}/{split}")


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "phrasecut",
        "referring",
        lambda root, common: PhraseCutDataModule(
            data_dir=str(root / prepared_dir("phrasecut", root=Path())), **common
        ),
        f"{prepared_dir('phrasecut', root=Path()).as_posix()}/test",
    ),
    *(_fewshot("pascal5i", fold) for fold in range(4)),
    *(_fewshot("coco20i", fold) for fold in range(4)),
    _zeroshot(10),
    _zeroshot(4),
    *(_refmatte(setting) for setting in RefMatteDataModule.SETTINGS),
    Benchmark("shapes", "referring", lambda root, common: ShapesDataModule(**common), None),
)
