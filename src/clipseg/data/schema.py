"""The contract between dataset readers, parquet shards, streaming and augmentation.

Every raw format (PhraseCut, PASCAL-5i, COCO-20i, PASCAL zero-shot, RefMatte, shapes) is converted
by ``clipseg prepare`` into parquet shards whose rows follow ``SHARD_FEATURES``: one row is one
(image, prompt) sample. Images and masks are stored as encoded bytes (PNG/JPEG as found on disk for
images, PNG for masks), so shards stay small and decoding happens in the loader workers.

Decoded samples (``Sample``) are what augmentation sees; batches (see ``BATCH_KEYS``) are what the
model sees.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
from datasets import Features, Value

NO_CLASS = -1

SHARD_FEATURES = Features(
    {
        "sample_id": Value("string"),  # unique within a split; names the sample in every error
        "image": Value("binary"),  # encoded image bytes
        "mask": Value("binary"),  # PNG, mode L: binary mask (0/255) or alpha matte (0..255)
        "text": Value("string"),  # the phrase, without template ("" for purely visual tasks)
        "class_id": Value("int32"),  # dataset class id, NO_CLASS when the protocol has none
        "support_image": Value("binary"),  # optional visual prompt source (None when absent)
        "support_mask": Value("binary"),  # PNG mask of the support object (None when absent)
        "label": Value("binary"),  # optional PNG of per-pixel class ids (zero-shot; 255 = ignore)
        "meta": Value("string"),  # JSON with dataset-specific extras (image id, task id, ...)
    }
)


class Sample(TypedDict, total=False):
    """A decoded sample before augmentation."""

    sample_id: str
    image: np.ndarray  # H x W x 3 uint8
    mask: np.ndarray  # H x W float32 in [0, 1]
    text: str
    class_id: int
    # h x w x 3 uint8: a visual prompt, or with support_mask the image it is made of (by the transform)
    support: np.ndarray | None
    support_mask: np.ndarray | None  # h x w float32 in [0, 1]: the object in support, or None
    label: np.ndarray | None  # H x W int64 class ids (255 = ignore) or None
    text_weight: float  # w of w * text + (1 - w) * visual, set by the dataset's prompt policy (1 = text only)
    meta: dict[str, Any]


# A batch is a dict with these keys (tensors stacked along B), as the step receives it. Training
# loaders send image and support as uint8 crops (device_finish.Ragged, with support_mask) and the mask
# as uint8 levels; the data module's on_after_batch_transfer resizes, prompts and normalizes them on the
# device (device_finish.finish_batch).
#   image [B,3,H,W] float normalized with the backbone's mean/std
#   mask [B,1,H,W] float in [0,1]
#   text list[str] (template applied), phrase list[str] (the same before templating)
#   support [B,3,H,W] float normalized; zeros where support_valid is False
#   support_valid [B] bool
#   text_weight [B] float: weight of the text embedding in w * text + (1 - w) * visual
#   sample_id list[str], class_id [B] long
#   label [B,H,W] long (only for zero-shot)
#   varied [B] bool (only for shapes drawn in a varied world): the scene has the varied look, not the plain one
BATCH_KEYS = (
    "image",
    "mask",
    "text",
    "phrase",
    "support",
    "support_valid",
    "text_weight",
    "sample_id",
    "class_id",
)


class BadSample(Exception):
    """A raw sample that cannot be converted; ``prepare`` reports it with its id and counts it as skipped.

    Readers ``yield`` (not raise) instances of it for a sample they must skip, so that one bad sample
    never stops a conversion: ``iter_rows(src, split, **options) -> Iterator[dict | BadSample]``.
    """

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(f"{sample_id}: {reason}")
        self.sample_id = sample_id
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadSample], tuple[str, str]]:
        # Workers of ``prepare --workers N`` send it back pickled; the default rebuilds it from
        # ``args`` (the one formatted message), which fails and leaves the pool waiting forever.
        return type(self), (self.sample_id, self.reason)
