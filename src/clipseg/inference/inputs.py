"""What a ``Predictor`` takes: an image embedded once (``ImageEmbedding``), one ``predict`` call as a
``Job`` (the server's batcher queues them), and how a lone prompt or image is told from a list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipseg.core.images import ImageLike
from clipseg.core.prompts import Prompt, PromptLike
from clipseg.inference.postprocess import PostProcess


@dataclass(frozen=True)
class ImageEmbedding:
    """One image encoded by a backend, kept to try prompts on it later (``Predictor.predict``).

    Attributes:
        features: the backend's value (e.g. torch vision activations); valid only with that backend.
        image: the ``H x W x 3`` uint8 image (refinement and tiles read it at full resolution).
    """

    features: Any
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the image: predictions come back at this size."""
        return self.image.shape[:2]


@dataclass(frozen=True, kw_only=True)
class Job:
    """One ``predict`` call, for ``Predictor.predict_each``: an image, its prompts and options."""

    image: ImageLike
    prompts: Sequence[PromptLike]
    refine: str = "none"
    tiles: bool = False
    postprocess: PostProcess | None = None


def prompt_list(prompts: Sequence[PromptLike] | PromptLike) -> list[PromptLike]:
    """A single string, ``Prompt``, path or image is one prompt (not a sequence of characters)."""
    if isinstance(prompts, (str, Path, Prompt, Image.Image, np.ndarray)):
        return [prompts]
    return list(prompts)


def is_one_image(images: object) -> bool:
    """A path, PIL image or single ``H x W[ x C]`` array, as opposed to a sequence of images."""
    return isinstance(images, (str, Path, Image.Image)) or (
        isinstance(images, np.ndarray) and images.ndim <= 3
    )
