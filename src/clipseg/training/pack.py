"""Lightning checkpoint → zoo safetensors file (``clipseg zoo pack`` calls ``pack_checkpoint``).

The zoo file is ``ClipSeg.save_pretrained``'s safetensors (config JSON in the metadata; decoder only
for a frozen, named backbone). A randomly initialised backbone has no tokenizer to load by name, so
its tokenizer (e.g. the one shapes-tiny built from its corpus) is stored in the metadata as well.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerBase

from clipseg.core.config import ClipSegConfig
from clipseg.core.tokenizer import META_TOKENIZER, tokenizer_to_metadata
from clipseg.modeling.clipseg import META_NAME, ClipSeg
from clipseg.modeling.safetensors_io import save_safetensors
from clipseg.training.module import ClipSegModule


def load_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint of ``ClipSegModule``, loaded without unpickling code (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not such a checkpoint (corrupt, another format, or code to unpickle).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle error, a zip error, a torch error: the file is the problem
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: not a Lightning checkpoint of `clipseg fit` that loads safely ({reason[:200]})"
        ) from None
    if (
        not isinstance(checkpoint, dict)
        or "hyper_parameters" not in checkpoint
        or "state_dict" not in checkpoint
    ):
        raise ValueError(
            f"{path}: not a Lightning checkpoint of `clipseg fit` (no hyper_parameters / state_dict)"
        )
    return checkpoint


def module_from_checkpoint(path: str | Path) -> ClipSegModule:
    """The ``ClipSegModule`` of a checkpoint: rebuilt from its hyperparameters, weights restored.

    A frozen backbone left out of the checkpoint is loaded from its name, as in training.
    """
    checkpoint = load_lightning_checkpoint(path)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    hparams["distill_from"] = None  # a teacher only shapes training: no need to read (or still have) it
    config = ClipSegConfig.from_dict(hparams["config"])
    tokenizer_from_init = (
        config.backbone_is_random
        and hparams.get("tokenizer") is None
        and hparams.get("tokenizer_corpus") is None
    )
    if tokenizer_from_init:
        # A run that took model and tokenizer from init_from (configs/finetune.yaml) needs that file
        # once more, for the tokenizer; its weights are replaced by the checkpoint's below.
        module = ClipSegModule(**hparams | {"config": None})
    else:
        # The checkpoint's weights replace whatever `init_from` started the run with: no need to read
        # (or even still have) that file.
        module = ClipSegModule(**hparams | {"init_from": None})
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def load_checkpoint_model(path: str | Path) -> tuple[ClipSeg, PreTrainedTokenizerBase]:
    """The model and tokenizer of a ``clipseg fit`` checkpoint (for ``clipseg predict`` and ``eval-all``)."""
    module = module_from_checkpoint(path)
    return module.model, module.tokenizer


def pack_checkpoint(ckpt_path: str | Path, out: str | Path, name: str) -> Path:
    """Write the model of ``ckpt_path`` as a zoo file and return its path.

    Args:
        ckpt_path: a Lightning checkpoint written by ``lightning fit`` (e.g. ``.../checkpoints/last.ckpt``).
        out: a ``.safetensors`` file path, or a folder that receives ``<name>.safetensors``.
        name: the zoo name, stored in the metadata.
    """
    out = Path(out)
    target = out if out.suffix == ".safetensors" else out / f"{name}.safetensors"
    return pack_module(module_from_checkpoint(ckpt_path), target, name)


def pack_module(
    module: ClipSegModule, target: str | Path, name: str, extra: dict[str, str] | None = None
) -> Path:
    """Write ``module``'s model to the ``.safetensors`` file ``target`` (atomically) and return its path.

    ``extra``: more metadata entries (string values), e.g. what a fine-tuning run started from.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        weights = module.model.save_pretrained(folder)
        with safe_open(str(weights), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        tensors = load_file(str(weights))
    if module.model.config.backbone_is_random:
        metadata[META_TOKENIZER] = tokenizer_to_metadata(module.tokenizer)
    metadata[META_NAME] = name
    save_safetensors(tensors, target, metadata=metadata | (extra or {}))
    return target
