"""The model and tokenizer of a training run: a random backbone's text tower is sized to its tokenizer."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from clipseg.core.config import ClipSegConfig
from clipseg.core.tokenizer import build_clip_tokenizer, load_named_tokenizer
from clipseg.modeling.clipseg import ClipSeg
from clipseg.zoo import load_weights


def load_tokenizer(
    *, source: str | None, corpus: Sequence[str] | None, config: ClipSegConfig
) -> PreTrainedTokenizerBase:
    """The tokenizer named by ``source`` (hub name / folder), built from ``corpus``, or the backbone's own.

    A tokenizer built from a corpus is deterministic, so every process of a run (and every later run
    with the same config) gets the same vocabulary without sharing files; packing (``clipseg zoo pack``) stores it with the model.
    """
    if corpus is not None:
        if source is not None:
            raise ValueError("pass either `tokenizer` (a name or folder) or `tokenizer_corpus`, not both")
        with tempfile.TemporaryDirectory(prefix="clipseg-tokenizer-") as folder:
            return build_clip_tokenizer(corpus, folder)
    if source is None:
        if config.backbone_is_random:
            raise ValueError(
                "a randomly initialised backbone has no tokenizer of its own: set `tokenizer` (hub name or folder) "
                "or `tokenizer_corpus` (words to build a CLIP-format tokenizer from)"
            )
        source = str(config.backbone)
    return load_named_tokenizer(source)


def match_text_tower(config: ClipSegConfig, tokenizer: PreTrainedTokenizerBase) -> ClipSegConfig:
    """``config`` with a random backbone's text vocabulary and special ids set from ``tokenizer``.

    CLIP's text tower pools at the end-of-text token, so its ``eos_token_id`` (and the embedding size)
    must be the tokenizer's; a hand-written config cannot know them. Named backbones come with their
    own tokenizer and are returned unchanged.
    """
    if not config.backbone_is_random:
        return config
    backbone = copy.deepcopy(config.backbone)
    text = backbone.setdefault("text_config", {})
    text.update(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return ClipSegConfig.from_dict({**config.to_dict(), "backbone": backbone})


def build_model(
    config: ClipSegConfig, *, tokenizer: str | None = None, tokenizer_corpus: Sequence[str] | None = None
) -> tuple[ClipSeg, PreTrainedTokenizerBase]:
    """A ``ClipSeg`` for ``config`` and its tokenizer (see ``load_tokenizer`` for the arguments).

    A named backbone is loaded before its tokenizer, so that a missing download fails with the
    backbone's message (what to download, which folder to pass).
    """
    if config.backbone_is_random:
        tok = load_tokenizer(source=tokenizer, corpus=tokenizer_corpus, config=config)
        return ClipSeg(match_text_tower(config, tok)), tok
    model = ClipSeg(config)
    return model, load_tokenizer(source=tokenizer, corpus=tokenizer_corpus, config=config)


def load_for_run(name_or_path: str, tokenizer: PreTrainedTokenizerBase, *, option: str) -> ClipSeg:
    """The zoo model or model file ``name_or_path`` that the run's ``option`` names (``init_from``,
    ``distill_from``): it reads the run's prompts, so its tokenizer must be the run's.

    Raises:
        ValueError: its tokenizer differs from ``tokenizer``.
    """
    model, model_tokenizer = load_weights(name_or_path)
    if model_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"{option} {name_or_path!r}: its tokenizer differs from this run's")
    return model


def load_teacher(name_or_path: str, tokenizer: PreTrainedTokenizerBase) -> ClipSeg:
    """The zoo model or model file ``name_or_path``, frozen and in eval mode, to distill from.

    Raises:
        ValueError: its tokenizer differs from ``tokenizer`` (the teacher reads the student's prompts).
    """
    return load_for_run(name_or_path, tokenizer, option="distill_from").requires_grad_(False).eval()
