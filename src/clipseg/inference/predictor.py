"""Inference API: ``Predictor.predict(image, prompts) -> N x H x W`` probabilities at the image's resolution.

An image can also be encoded once and prompted later (as segment-anything's ``set_image``)::

    embedding = predictor.embed_image("scene.png")
    probs = predictor.predict(embedding, ["red circle"])
    more = predictor.predict(embedding, ["blue square", "green triangle"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipseg.core.config import PreprocessConfig
from clipseg.core.images import ImageLike, load_image, load_mask
from clipseg.core.preprocess import preprocess
from clipseg.core.prompts import Prompt, PromptLike, as_prompt, mix_conditionals, text_weights, visual_prompt
from clipseg.inference.backend import Backend
from clipseg.inference.upsample import logits_to_probs


@dataclass(frozen=True)
class ImageEmbedding:
    """One image encoded by a backend, kept to try prompts on it later (``Predictor.predict``).

    Attributes:
        features: the backend's value (e.g. torch vision activations); valid only with that backend.
        size: ``(H, W)`` of the original image: predictions come back at this size.
    """

    features: Any
    size: tuple[int, int]


class Predictor:
    """A model behind a ``Backend``, with its preprocessing, ready for images from users.

    Args:
        backend: the model runtime (``clipseg.backends.torch.TorchBackend``, ...).
        name: zoo name or path the model came from (for summaries).
    """

    def __init__(self, backend: Backend, *, name: str = "") -> None:
        self.backend = backend
        self.name = name

    @property
    def preprocessing(self) -> PreprocessConfig:
        return self.backend.preprocessing

    def _pixels(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return preprocess(list(images), self.preprocessing)

    def embed_prompts(self, prompts: Sequence[PromptLike]) -> np.ndarray:
        """``N x D`` float32 conditionals for ``prompts``: text encoded in one batch, support images in another."""
        items = [as_prompt(p) for p in prompts]
        if not items:
            raise ValueError("empty prompt list: pass at least one prompt")
        text_idx = [i for i, p in enumerate(items) if p.text is not None]
        image_idx = [i for i, p in enumerate(items) if p.image is not None]
        text = visual = None
        if text_idx:
            encoded = self.backend.encode_text([items[i].text for i in text_idx])
            text = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
            text[text_idx] = encoded
        if image_idx:
            encoded = self.backend.encode_visual(
                self._pixels([self._support(i, items[i]) for i in image_idx])
            )
            visual = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
            visual[image_idx] = encoded
        text = np.zeros_like(visual) if text is None else text
        visual = np.zeros_like(text) if visual is None else visual
        weight = text_weights(
            [p.text is not None for p in items],
            [p.image is not None for p in items],
            [p.weight for p in items],
        )
        return mix_conditionals(text, visual, weight)

    def _support(self, index: int, prompt: Prompt) -> np.ndarray:
        """The support image of ``prompt``, as a visual prompt (paper Sec. 4.3) when it has a mask."""
        img = load_image(prompt.image, name=f"prompt {index}")
        if prompt.mask is None:
            return img
        mask = load_mask(prompt.mask, name=f"prompt {index} mask")
        if mask.shape != img.shape[:2]:
            raise ValueError(f"prompt {index}: mask {mask.shape} and image {img.shape[:2]} differ in size")
        return visual_prompt(img, mask, self.preprocessing.size)

    def embed_image(self, image: ImageLike) -> ImageEmbedding:
        """Encode ``image`` once; ``predict(embedding, prompts)`` then only runs the decoder."""
        array = load_image(image)
        return ImageEmbedding(features=self.backend.encode_image(self._pixels([array])), size=array.shape[:2])

    def predict_batch(
        self, images: Sequence[ImageLike], prompts: Sequence[PromptLike], *, batch_size: int = 8
    ) -> list[np.ndarray]:
        """Probabilities ``N x H_i x W_i`` (float32) for each image; prompts are encoded once for all images."""
        conditionals = self.embed_prompts(prompts)
        arrays = [load_image(img, name=f"image {i}") for i, img in enumerate(images)]
        results: list[np.ndarray] = []
        for start in range(0, len(arrays), batch_size):
            chunk = arrays[start : start + batch_size]
            logits = self.backend.decode(self.backend.encode_image(self._pixels(chunk)), conditionals)
            results += [logits_to_probs(lg, img.shape[:2]) for img, lg in zip(chunk, logits)]
        return results

    def predict(
        self, image: ImageLike | ImageEmbedding, prompts: Sequence[PromptLike] | PromptLike
    ) -> np.ndarray:
        """``N x H x W`` float32 probabilities for one image (or ``embed_image``'s embedding) at its own resolution."""
        if isinstance(prompts, (str, Prompt)):
            prompts = [prompts]
        if not isinstance(image, ImageEmbedding):
            return self.predict_batch([image], prompts)[0]
        logits = self.backend.decode(image.features, self.embed_prompts(prompts))
        return logits_to_probs(logits[0], image.size)
