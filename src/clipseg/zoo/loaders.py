"""Turn a resolved zoo file (or any user path) into a ``ClipSeg`` model and its tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import safe_open
from transformers import PreTrainedTokenizerBase

from clipseg.core.errors import BackboneUnavailableError
from clipseg.core.files import atomic_write_text, sha256_of
from clipseg.core.tokenizer import load_named_tokenizer, read_tokenizer
from clipseg.modeling import ClipSeg
from clipseg.modeling.clipseg import META_CONFIG
from clipseg.modeling.convert import (
    ORIGINAL_BACKBONE,
    convert_original_checkpoint,
    convert_transformers_checkpoint,
)
from clipseg.zoo.cards import ModelCard
from clipseg.zoo.hub import PICKLE_NAME, SAFETENSORS_NAME
from clipseg.zoo.store import ZooError, cache_dir

Loaded = tuple[ClipSeg, PreTrainedTokenizerBase]


def load_safetensors(path: Path) -> Loaded:
    """Our format: config (and, for random backbones, the tokenizer) in the file's metadata."""
    try:
        model = ClipSeg.from_pretrained(path)
    except BackboneUnavailableError as err:  # a decoder-only file whose backbone cannot be loaded
        raise BackboneUnavailableError(f"model file {path}: {err}") from None
    tokenizer = read_tokenizer(path)
    if tokenizer is None:
        if model.config.backbone_is_random:
            raise ZooError(
                f"{path}: a model with a random backbone must carry its tokenizer, and this one does not"
            )
        tokenizer = load_named_tokenizer(str(model.config.backbone))
    return model, tokenizer


def load_transformers_folder(folder: Path, *, weights: str | None = None) -> Loaded:
    """A CIDAS-layout folder: ``config.json`` + weights (``weights``, else ``model.safetensors`` if
    present, else ``pytorch_model.bin``) + tokenizer files."""
    use_safetensors = None if weights is None else weights.endswith(".safetensors")
    model = convert_transformers_checkpoint(folder, use_safetensors=use_safetensors)
    return model, load_named_tokenizer(str(folder))


def _has_clipseg_config(path: Path) -> bool:
    if path.suffix != ".safetensors":
        return False
    with safe_open(str(path), framework="pt") as handle:
        return META_CONFIG in (handle.metadata() or {})


def load_weights_file(path: Path) -> Loaded:
    """A weights file: this project's safetensors when its metadata holds a config; else the
    transformers layout when it is ``model.safetensors`` / ``pytorch_model.bin`` next to a ``config.json``."""
    transformers = path.name in (SAFETENSORS_NAME, PICKLE_NAME) and (path.parent / "config.json").is_file()
    if transformers and not _has_clipseg_config(path):
        return load_transformers_folder(path.parent, weights=path.name)
    if path.suffix != ".safetensors":
        raise ZooError(f"{path}: a {path.suffix} file loads only next to a transformers config.json")
    return load_safetensors(path)


def load_original(path: Path, *, backbone: str, converted: Path | None = None, **arch: Any) -> Loaded:
    """An original decoder-only ``.pth`` on ``backbone``; converted once to safetensors at ``converted``.

    The converted file's digest is pinned next to it when written and checked on every later load.
    """
    if converted is None:
        return convert_original_checkpoint(path, backbone=backbone, **arch), load_named_tokenizer(backbone)
    weights = converted / "model.safetensors"
    pin = converted / "model.safetensors.sha256"
    if not weights.is_file():
        convert_original_checkpoint(path, backbone=backbone, out=converted, **arch)
        atomic_write_text(pin, sha256_of(weights) + "\n")
    elif not pin.is_file() or sha256_of(weights) != pin.read_text().strip():
        raise ZooError(
            f"{weights}: converted file does not match its pinned sha256; delete {converted} to convert again"
        )
    return load_safetensors(weights)


def load_card_file(card: ModelCard, path: Path) -> Loaded:
    if card.format in ("clipseg", "transformers"):
        return load_weights_file(path)
    return load_original(
        path,
        backbone=card.backbone or ORIGINAL_BACKBONE,
        converted=cache_dir() / card.name / "converted",
        **card.arch,
    )


def load_path(path: Path) -> Loaded:
    """A user-given checkpoint file (``clipseg.zoo.resolve_weights`` picks it in a folder): our
    ``.safetensors``, a transformers / CIDAS folder's weights file or an original ``.pth``."""
    if path.suffix == ".pth":
        return load_original(path, backbone=ORIGINAL_BACKBONE)
    if path.suffix == ".ckpt":  # training code rebuilds these; the zoo sits below training
        raise ZooError(
            f"{path}: a `clipseg fit` checkpoint; `clipseg predict --model {path}` and `clipseg eval-all "
            "--models` read it, in Python `clipseg.training.pack.load_checkpoint_model`, or make it a "
            "model file with `clipseg zoo pack`"
        )
    return load_weights_file(path)
