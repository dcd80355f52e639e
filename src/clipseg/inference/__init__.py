"""Inference without torch: ``Predictor`` over a ``Backend`` (``clipseg.backends``), upsampling and overlays.

The model runtime is the backend's business (``backends.torch`` today, onnxruntime later); everything
around it (reading images, preprocessing, prompts, mixing, upsampling to the image size, sigmoid,
overlays, refinement: ``refine`` and ``tiles``) is numpy and shared by every backend. Bulk masking
runs ``sources`` → predictor → ``postprocess`` → ``writers`` (``bulk``).
"""

from clipseg.inference.backend import Backend
from clipseg.inference.inputs import ImageEmbedding
from clipseg.inference.predictor import Predictor

__all__ = ["Backend", "ImageEmbedding", "Predictor"]
