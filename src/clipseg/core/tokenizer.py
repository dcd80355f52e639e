"""Tokenizers: loading one by name, building a small CLIP-format BPE tokenizer offline, and storing it in model files.

Real CLIP tokenizers come from the hub, which is out of reach here. Tests and the shapes-tiny model
need a tokenizer in exactly CLIP's on-disk format (``vocab.json`` + ``merges.txt``) so that the same
``transformers.CLIPTokenizer`` code path is used as for the real models. CLIP's vocabulary starts
with the 256 byte symbols, then the same with the end-of-word marker ``</w>``, then merges; we keep
that layout and add merges that spell out each word of a given corpus, left to right.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import safe_open

from clipseg.core.errors import BackboneUnavailableError
from clipseg.core.hub_access import hub_command, hub_reachable

if TYPE_CHECKING:  # transformers imports torch where it is installed: only the loaders below import it
    from transformers import CLIPTokenizerFast, PreTrainedTokenizerBase

_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def corpus_words(corpus: Iterable[str]) -> list[str]:
    """Distinct lower-case words of ``corpus`` in order of first appearance."""
    seen: dict[str, None] = {}
    for text in corpus:
        for word in _WORD.findall(text.lower()):
            seen.setdefault(word, None)
    return list(seen)


def vocabulary_words(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The words (of two or more characters) that ``tokenizer`` encodes as one token, sorted.

    For a tokenizer of ``build_clip_tokenizer`` these are exactly its corpus words (single letters
    and symbols are always one token).
    """
    return sorted(
        token[: -len("</w>")] for token in tokenizer.get_vocab() if token.endswith("</w>") and len(token) > 5
    )


def unknown_words(tokenizer: PreTrainedTokenizerBase, text: str) -> list[str]:
    """Words of ``text`` that a corpus-built ``tokenizer`` does not know (they split into several tokens)."""
    words = dict.fromkeys(
        re.findall(r"\w+|[^\w\s]+", text.lower())
    )  # distinct, in order; "würfel" is one word
    return [word for word in words if len(tokenizer.tokenize(word)) != 1]


def byte_symbols() -> list[str]:
    """The 256 byte symbols of GPT-2 / CLIP byte-level BPE, in vocabulary order.

    Printable bytes stand for themselves; the others map to code points from 256 on. (transformers 5
    no longer exports its ``bytes_to_unicode``; the table is part of CLIP's file format.)
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def _bpe(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply ``ranks`` to ``pieces`` the way BPE does: always the lowest-ranked adjacent pair first."""
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(pairwise(pieces))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = [*pieces[:i], pieces[i] + pieces[i + 1], *pieces[i + 2 :]]
    return pieces


def build_clip_tokenizer(
    corpus: Iterable[str], out_dir: str | Path, *, max_length: int = 77
) -> CLIPTokenizerFast:
    """Write a CLIP-format tokenizer that encodes every word of ``corpus`` as one token.

    Words outside the corpus still tokenize (into byte symbols), as with any BPE vocabulary.
    Returns the fast tokenizer, saved with ``save_pretrained`` into ``out_dir``.
    """
    from transformers import CLIPTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for token in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(token, len(vocab))
    ranks: dict[tuple[str, str], int] = {}
    for word in corpus_words(corpus):
        # Add merges until BPE (lowest rank first) joins the whole word. New merges rank last, so they
        # never change how earlier words are split: those always had a lower-ranked merge to apply.
        while len(pieces := _bpe([*word[:-1], word[-1] + "</w>"], ranks)) > 1:
            ranks[(pieces[0], pieces[1])] = len(ranks)
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
    merges = [f"{a} {b}" for a, b in ranks]
    for special in (BOS, EOS):
        vocab[special] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # transformers 4 converts the two files into a fast tokenizer; 5 builds its (only, tokenizers-backed)
    # CLIPTokenizer from them. Both save tokenizer.json next to them.
    fast = CLIPTokenizerFast.from_pretrained(str(out), model_max_length=max_length)
    fast.save_pretrained(str(out))
    return fast


# A model with a random (e.g. trained-from-scratch) backbone has no tokenizer to load by name, so its
# safetensors file carries one in the metadata.
META_TOKENIZER = "clipseg_tokenizer"  # JSON {file name: text} of the tokenizer's `save_pretrained` files
_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_to_metadata(tokenizer: PreTrainedTokenizerBase) -> str:
    """The tokenizer as one JSON string (its CLIP-format files), for safetensors metadata."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        if not (Path(folder) / "vocab.json").is_file():
            # transformers 5 saves only tokenizer.json: CLIP's two files, which every version reads,
            # come from the BPE model itself.
            tokenizer.backend_tokenizer.model.save(folder)
        files = {
            name: (Path(folder) / name).read_text()
            for name in _TOKENIZER_FILES
            if (Path(folder) / name).is_file()
        }
    return json.dumps(files)


def tokenizer_from_metadata(text: str) -> PreTrainedTokenizerBase:
    """Inverse of ``tokenizer_to_metadata``."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        for name, content in json.loads(text).items():
            (Path(folder) / Path(name).name).write_text(content)
        return AutoTokenizer.from_pretrained(folder)


def read_tokenizer(path: str | Path) -> PreTrainedTokenizerBase | None:
    """The tokenizer stored in a zoo safetensors file, or ``None`` if it has none (use the backbone's)."""
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata() or {}
    return tokenizer_from_metadata(metadata[META_TOKENIZER]) if META_TOKENIZER in metadata else None


def load_named_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a hub name or local folder (``AutoTokenizer``), offline from the cache if need be.

    Raises:
        BackboneUnavailableError: it is neither a tokenizer folder nor in the Hugging Face cache.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=not hub_reachable())
    except OSError as err:
        raise BackboneUnavailableError(
            f"cannot load the tokenizer {source!r} (not a local folder and not in the Hugging Face cache; "
            f"downloads are off or failed). Download it once with `{hub_command(f'download {source}')}` or "
            "pass a local folder holding vocab.json and merges.txt."
        ) from err
