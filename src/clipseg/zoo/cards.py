"""The registry of named pretrained models (cards), separate from architecture configs.

Cards live in ``zoo/cards.json`` next to the shipped weights, so that ``clipseg zoo pack`` can
record the digest of a model it has just written. A card says where a model's weights come from and
how to check them; the architecture lives in the weights file's own metadata (our safetensors), in
``config.json`` (transformers layout), or is read off the tensors of the original ``.pth`` files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from clipseg.core.files import atomic_write_text

Format = Literal["clipseg", "transformers", "original"]
FORMATS = get_args(Format)


@dataclass(frozen=True)
class ModelCard:
    """One named model.

    Args:
        name: registry name (``clipseg.load_model(name)``).
        format: ``clipseg`` (our safetensors; config, and tokenizer for random backbones, in the
            metadata), ``transformers`` (a CIDAS ``CLIPSegForImageSegmentation`` folder) or
            ``original`` (timojl/clipseg decoder-only ``.pth``, converted to safetensors in the cache
            on first load).
        filename: the weights file this card verifies. ``None`` for hub cards whose file is chosen
            from the repository (``model.safetensors`` over ``pytorch_model.bin``, see
            ``clipseg.zoo.hub.choose_weights``).
        sha256: full digest of ``filename``; ``None`` when no digest is published. Hub files are then
            checked against the digest the hub published for them (the name of their blob in the HF
            cache); other files against the digest pinned in the cache at first use.
        hf_repo: hub repository the card resolves through the standard HF cache (``None``: not on the
            hub); its ``*.json`` / ``*.txt`` files (configs, tokenizer) come with the weights.
        revision: hub branch, tag or commit to load (``None``: ``main``); a commit pins the exact files.
        backbone: CLIP model the original decoder-only weights sit on (widths and head type are read
            off the tensors).
        arch: what the original ``.pth`` files do not record, passed to
            ``convert_original_checkpoint`` (``extract_layers``, ``decoder_heads``, ``image_size``;
            the paper's (3, 7, 9), 4 and 352 by default).
        paper: numbers the paper reports for this model (``benchmark/metric`` → value), shown by
            ``make eval-all`` beside ours.
        measured: numbers this project measured on the file (e.g. ``shapes-quality/text_miou``, the
            mean over ``shapes-quality/seeds`` of ``clipseg.eval.quality.shapes_quality``), with how they
            were measured (seeds, scenes); the tests check the shipped file still reaches them.
        vocabulary: the words of a model whose tokenizer was built from a fixed corpus (shown by
            ``clipseg zoo list``; other words mean nothing to it). Empty for CLIP's own tokenizer.
    """

    name: str
    description: str
    format: Format
    filename: str | None
    sha256: str | None
    source: str
    license: str
    size_mb: float
    hf_repo: str | None = None
    revision: str | None = None
    backbone: str | None = None
    arch: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float | list[int]] = field(default_factory=dict)
    vocabulary: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"card {self.name!r}: format must be one of {FORMATS}, got {self.format!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or set(self.sha256) - set("0123456789abcdef")):
            raise ValueError(f"card {self.name!r}: sha256 must be 64 lower-case hex digits")
        if self.filename is None and (self.hf_repo is None or self.sha256 is not None):
            raise ValueError(f"card {self.name!r}: only a hub card without sha256 may leave filename empty")
        object.__setattr__(self, "vocabulary", tuple(self.vocabulary))


def read_cards(path: Path) -> dict[str, ModelCard]:
    """Cards of a ``cards.json`` (a list of card objects), by name."""
    if not path.is_file():
        return {}
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(ModelCard)}
    cards = {}
    for entry in entries:
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{path}: card {entry.get('name')!r} has unknown keys {unknown}")
        cards[entry["name"]] = ModelCard(**entry)
    return cards


def write_cards(path: Path, cards: dict[str, ModelCard]) -> None:
    """Write ``cards`` back in the same layout (defaults left out, so diffs stay small)."""
    entries = []
    for card in cards.values():
        entry = dataclasses.asdict(card)
        entry["vocabulary"] = list(card.vocabulary)
        entries.append(
            {k: v for k, v in entry.items() if k in ("filename", "sha256") or v not in (None, [], {})}
        )
    atomic_write_text(path, json.dumps(entries, indent=2) + "\n")
