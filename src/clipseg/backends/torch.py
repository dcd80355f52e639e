"""``TorchBackend``: a ``ClipSeg`` model and its tokenizer behind the numpy ``Backend`` protocol."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from clipseg.core.config import PreprocessConfig
from clipseg.core.prompts import tokenize_prompts
from clipseg.modeling import ClipSeg


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` this torch can use (default: cuda if available, else cpu).

    Raises:
        ValueError: not a device name, or a CUDA device this machine or torch build does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r}: not a device name; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise ValueError(f"device {str(device)!r}: {why} (torch {torch.__version__}); use cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: only {torch.cuda.device_count()} GPU(s) are visible (cuda:0...)"
            )
    return resolved


class TorchBackend:
    """Runs ``model`` on ``device`` (``resolve_device``) in inference mode.

    ``encode_image`` returns the vision activations (a list of ``B x T x C`` tensors on ``device``).
    """

    def __init__(
        self,
        model: ClipSeg,
        tokenizer: PreTrainedTokenizerBase,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.fixed_vocabulary = model.config.backbone_is_random

    @property
    def preprocessing(self) -> PreprocessConfig:
        return self.model.config.preprocessing

    def _tensor(self, pixels: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)

    @torch.inference_mode()
    def encode_image(self, pixels: np.ndarray) -> list[Tensor]:
        return self.model.encode_image(self._tensor(pixels))

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        encoded = tokenize_prompts(
            self.tokenizer, list(texts), max_length=self.model.max_text_tokens, return_tensors="pt"
        )
        embedding = self.model.encode_text(**{k: v.to(self.device) for k, v in encoded.items()})
        return embedding.float().cpu().numpy()

    @torch.inference_mode()
    def encode_visual(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.encode_visual_prompt(self._tensor(pixels)).float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, features: list[Tensor], conditionals: np.ndarray) -> np.ndarray:
        size = self.preprocessing.size
        logits = self.model.decode(features, self._tensor(conditionals), out_size=(size, size))
        return logits.float().cpu().numpy()

    @torch.inference_mode()
    def decode_pooled(
        self, features: list[Tensor], conditionals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        size = self.preprocessing.size
        logits, pooled = self.model.decode(
            features, self._tensor(conditionals), out_size=(size, size), pooled=True
        )
        return logits.float().cpu().numpy(), pooled.float().cpu().numpy()
