"""The ``Backend`` protocol: what a ``Predictor`` needs of a model runtime (torch, onnxruntime, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from clipseg.core.config import PreprocessConfig

if TYPE_CHECKING:  # transformers imports torch where it is installed; inference never does
    from transformers import PreTrainedTokenizerBase


class Backend(Protocol):
    """A CLIPSeg model behind numpy inputs and outputs.

    Images arrive preprocessed (``clipseg.core.preprocess`` with ``preprocessing``) as ``B x 3 x S x S``
    float32. ``encode_image`` returns the backend's own value for those images (e.g. the vision
    activations); callers keep it and pass it to ``decode`` once per set of prompts, so an image is
    encoded once however many prompts follow.
    """

    @property
    def preprocessing(self) -> PreprocessConfig:
        """Input size, resize filter, mean and std the model expects."""
        ...

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer ``encode_text`` uses (the predictor names words it does not know)."""
        ...

    @property
    def fixed_vocabulary(self) -> bool:
        """Whether the tokenizer was built from a fixed corpus (a randomly initialised backbone, e.g.
        shapes-tiny): words outside it carry no meaning the model learnt."""
        ...

    def encode_image(self, pixels: np.ndarray) -> Any:
        """The image features of ``B x 3 x S x S`` pixels, as the backend's ``decode`` wants them."""
        ...

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """``N x D`` float32 embeddings of ``N`` text prompts."""
        ...

    def encode_visual(self, pixels: np.ndarray) -> np.ndarray:
        """``N x D`` float32 embeddings of ``N`` support images (``N x 3 x S x S``, preprocessed)."""
        ...

    def decode(self, features: Any, conditionals: np.ndarray) -> np.ndarray:
        """``B x N x S x S`` float32 logits of every image of ``features`` for every ``N x D`` conditional."""
        ...

    def decode_pooled(self, features: Any, conditionals: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``decode``'s logits and the decoder's ``B x N x 3R`` summary of every image and prompt
        (``ClipSegDecoder.forward(pooled=True)``, read by a presence head), or None where the
        backend cannot give it (an ONNX export made before it)."""
        ...
