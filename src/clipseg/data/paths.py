"""Where prepared datasets live: the one table ``clipseg prepare``, ``configs/`` and ``eval-all`` share.

Everything sits below one data root, ``$CLIPSEG_DATA`` (default ``./data``)::

    phrasecut/  pascal5i-fold{0..3}/  coco20i-fold{0..3}/  pascal-zeroshot/
    refmatte/{keyword,expression,rw100}/      (shapes needs no data: it is generated)

``clipseg prepare`` writes there unless given ``--out``; the configs read
``${CLIPSEG_DATA:-data}/<folder>`` (a test checks each config against this table).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DATA_ENV = "CLIPSEG_DATA"

# dataset → folder below the data root; ``{name}`` fields are the dataset reader's options.
PREPARED_DIRS: dict[str, str] = {
    "phrasecut": "phrasecut",
    "pascal5i": "pascal5i-fold{fold}",
    "coco20i": "coco20i-fold{fold}",
    "pascal-zeroshot": "pascal-zeroshot",
    "refmatte": "refmatte/{setting}",
    "shapes": "shapes",
}


def data_root() -> Path:
    """``$CLIPSEG_DATA``, or ``./data``."""
    return Path(os.environ.get(DATA_ENV, "data"))


def prepared_dir(
    dataset: str,
    options: Mapping[str, Any] | None = None,
    *,
    splits: Sequence[str] | None = None,
    root: Path | None = None,
) -> Path:
    """The folder of ``dataset``'s shards for these reader ``options`` (e.g. ``{"fold": 1}``).

    RefMatte-RW100 (``splits=["rw100"]``) is its own setting, ``refmatte/rw100``.
    """
    if dataset not in PREPARED_DIRS:
        raise ValueError(f"{dataset!r} data has no default folder: pass --out")
    fields = dict(options or {})
    if dataset == "refmatte" and list(splits or ()) == ["rw100"]:
        fields["setting"] = "rw100"
    try:
        folder = PREPARED_DIRS[dataset].format(**fields)
    except KeyError as err:
        raise ValueError(f"the folder of {dataset!r} needs the option {err.args[0]!r}") from None
    return (root if root is not None else data_root()) / folder
