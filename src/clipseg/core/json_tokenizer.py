"""``JsonTokenizer``: a saved fast tokenizer (``tokenizer.json``) on the ``tokenizers`` library alone.

``import transformers`` imports torch whenever torch is installed, so the ONNX backend, which must never
import torch, reads the folder a fast tokenizer's ``save_pretrained`` wrote with this class instead of
``AutoTokenizer``. It offers the part of the transformers interface that ``tokenize_prompts`` and the
predictor use (call with padding / truncation, ``model_max_length``, ``get_vocab``, ``tokenize``), with
the same settings a transformers fast tokenizer hands to the same ``tokenizers.Tokenizer``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

TOKENIZER_JSON = "tokenizer.json"
_SETTINGS = ("tokenizer_config.json", "special_tokens_map.json")  # read in this order, first value wins


def _setting(folder: Path, key: str) -> Any:
    """``key`` of the folder's tokenizer settings files; a special token as its text."""
    for name in _SETTINGS:
        path = folder / name
        value = json.loads(path.read_text()).get(key) if path.is_file() else None
        if value is not None:
            return value["content"] if isinstance(value, dict) else value
    return None


class JsonTokenizer:
    """A fast tokenizer folder: ``tokenizer.json`` plus its ``tokenizer_config.json``.

    Args:
        folder: what ``save_pretrained`` of a transformers fast tokenizer wrote.

    Raises:
        ValueError: the folder has no ``tokenizer.json`` or names no padding token.
    """

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not (folder / TOKENIZER_JSON).is_file():
            raise ValueError(f"{folder}: no {TOKENIZER_JSON} (a slow tokenizer's folder)")
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_JSON))
        self.pad_token = _setting(folder, "pad_token")
        if self.pad_token is None or self._tokenizer.token_to_id(self.pad_token) is None:
            raise ValueError(f"{folder}: no padding token in its settings")
        self.model_max_length = int(_setting(folder, "model_max_length") or 0) or None
        # Padding and truncation are settings of the shared ``Tokenizer``: one call at a time sets them.
        self._lock = threading.Lock()

    def __call__(
        self,
        texts: Sequence[str],
        *,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        """``input_ids`` and ``attention_mask`` of ``texts`` (start and end tokens added).

        Lists of lists, or ``N x L`` int64 numpy arrays with ``return_tensors="np"`` (needs ``padding``
        when the lengths differ). Padding is to the longest text, on the right, as transformers does.
        """
        if return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors={return_tensors!r}: this tokenizer returns numpy arrays only")
        tokenizer = self._tokenizer
        limit = max_length or self.model_max_length
        with self._lock:
            if truncation and limit:
                tokenizer.enable_truncation(limit)
            else:
                tokenizer.no_truncation()
            if padding:
                tokenizer.enable_padding(
                    pad_id=tokenizer.token_to_id(self.pad_token), pad_token=self.pad_token
                )
            else:
                tokenizer.no_padding()
            encodings = tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        mask = [e.attention_mask for e in encodings]
        if return_tensors == "np":
            return {
                "input_ids": np.array(ids, dtype=np.int64),
                "attention_mask": np.array(mask, dtype=np.int64),
            }
        return {"input_ids": ids, "attention_mask": mask}

    def get_vocab(self) -> dict[str, int]:
        """Token → id, added (special) tokens included."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` without start and end tokens."""
        with self._lock:
            self._tokenizer.no_truncation()
            return self._tokenizer.encode(text, add_special_tokens=False).tokens


def load_saved_tokenizer(folder: str | Path) -> Any:
    """``JsonTokenizer`` of a fast tokenizer's folder, else (a slow tokenizer's folder, from an older
    export) transformers' ``AutoTokenizer``, which imports torch where it is installed."""
    try:
        return JsonTokenizer(folder)
    except ValueError:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder))
