"""From a decoded ``Sample`` to model tensors (albumentations 2.x), and batching.

Train: random crop keeping ≥ 5 % of the foreground, horizontal flip unless the phrase says left/right
(a flip would make it false), optional light color jitter (never hue: colors are part of the
prompts), a template drawn from ``prompts.TEMPLATES``.
Eval: the fixed template ``TEMPLATES[0]``. Then, for both, images (and support images) go through the
model's own ``clipseg.core.preprocess`` (resize filter, mean and std as at inference), so evaluation
happens at model size; targets are resized with nearest-neighbour interpolation unless
``mask_interpolation="linear"`` (alpha mattes), so binary masks stay binary. A support that comes with
its ``support_mask`` becomes a visual prompt here (``core.prompts.visual_prompt``). Training sends the
image and prompt crops instead, for ``device_finish.finish_batch`` to resize, prompt and normalize on
the device.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.crops.transforms import BaseCrop
from torch.utils.data import default_collate

from clipseg.core.config import PreprocessConfig
from clipseg.core.preprocess import preprocess, resize_image
from clipseg.core.prompts import (
    TEMPLATES,
    VisualPromptStyle,
    apply_template,
    prompt_crop,
    sample_template,
    visual_prompt,
)
from clipseg.data.device_finish import DEVICE_FILTERS, Ragged
from clipseg.data.schema import NO_CLASS, Sample
from clipseg.data.sharding import rank_and_world_size, stream_entropy
from clipseg.data.streaming import MASK_LEVELS

_SIDE_WORDS = re.compile(r"\b(left|right)", re.IGNORECASE)
_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR}
# Crops above this many model inputs' pixels are resized in the worker even when finishing on the
# device: a photo of 12 MP would send 36 MB a sample through shared memory and pad the GPU's canvas.
_SEND_LIMIT = 4


def mentions_left_right(phrase: str) -> bool:
    """Whether ``phrase`` refers to a horizontal side ("left", "right", "leftmost", ...)."""
    return _SIDE_WORDS.search(phrase) is not None


class ForegroundCrop(BaseCrop):
    """Random crop (area fraction ``scale``, aspect ``ratio``) that keeps ≥ ``min_foreground`` of the mask mass.

    Tries ``attempts`` random boxes; falls back to the full image, which keeps all of it. Without
    foreground (negatives) any box is accepted.
    """

    def __init__(
        self,
        *,
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        min_foreground: float = 0.05,
        attempts: int = 10,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.scale, self.ratio, self.min_foreground, self.attempts = scale, ratio, min_foreground, attempts

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        mask = data.get("mask")
        total = float(mask.sum()) if mask is not None else 0.0
        for _ in range(self.attempts):
            area = h * w * self.py_random.uniform(*self.scale)
            aspect = np.exp(self.py_random.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw = min(w, max(1, round(np.sqrt(area * aspect))))
            ch = min(h, max(1, round(np.sqrt(area / aspect))))
            x0, y0 = self.py_random.randint(0, w - cw), self.py_random.randint(0, h - ch)
            if total == 0 or float(mask[y0 : y0 + ch, x0 : x0 + cw].sum()) >= self.min_foreground * total:
                return {"crop_coords": (x0, y0, x0 + cw, y0 + ch)}
        return {"crop_coords": (0, 0, w, h)}


class SampleTransform:
    """Turn a ``Sample`` into model tensors.

    Returns a dict: ``image`` ``[3,S,S]`` float32 normalized (``preprocess``), ``mask`` ``[1,S,S]``
    float32 in [0,1], ``text`` (template applied; "" for an empty phrase), ``support`` ``[3,S,S]`` as
    ``image`` (zeros when absent; the visual prompt of ``support`` + ``support_mask`` when the sample
    has both), ``support_valid`` bool, ``text_weight`` float32, ``sample_id``, ``class_id`` long, and
    ``label`` ``[S,S]`` long when the sample has one. With ``finish_on_device``, ``image``, ``support``
    and ``support_mask`` are uint8 numpy crops instead (see ``finish_on_device``).

    Args:
        preprocessing: the model's input size S, resize filter, mean and std.
        train: random crop / flip / template sampling (else the fixed template).
        color_jitter: light brightness/contrast/saturation jitter in training.
        crop_scale: area fraction range of the training crop.
        min_foreground: fraction of the foreground a training crop must keep.
        mask_interpolation: "nearest" (binary masks, class labels) or "linear" (alpha mattes).
        templates: prompt templates; training samples one, evaluation uses the first.
        seed: base seed of the augmentation randomness (combined with rank and worker).
        prompt_style: how a support + mask becomes a visual prompt (default: the paper's).
        finish_on_device: leave the pixel work to ``device_finish.finish_batch`` after the transfer:
            ``image`` is the cropped, flipped ``h x w x 3`` uint8 image (resized to ``S x S`` here for a
            filter the device lacks or a crop over 4 S² pixels), ``support`` / ``support_mask`` the
            prompt's crops (``prompt_crop``; a finished prompt, made here for a crop over 4 S², with a
            ``0 x 0`` mask; ``0 x 0`` both when absent).
    """

    def __init__(
        self,
        *,
        preprocessing: PreprocessConfig,
        train: bool = False,
        color_jitter: bool = False,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        min_foreground: float = 0.05,
        mask_interpolation: str = "nearest",
        templates: Sequence[str] = TEMPLATES,
        seed: int = 0,
        prompt_style: VisualPromptStyle | None = None,
        finish_on_device: bool = False,
    ) -> None:
        if mask_interpolation not in _INTERPOLATION:
            raise ValueError(
                f"mask_interpolation must be one of {sorted(_INTERPOLATION)}, got {mask_interpolation!r}"
            )
        self.preprocessing, self.image_size = preprocessing, preprocessing.size
        self.train, self.templates, self.seed = train, tuple(templates), seed
        self.mask_interpolation, self.prompt_style = mask_interpolation, prompt_style or VisualPromptStyle()
        self.finish_on_device = finish_on_device
        if train:
            head = [ForegroundCrop(scale=crop_scale, min_foreground=min_foreground)]
            tail = (
                [A.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.1, hue=0.0, p=0.8)]
                if color_jitter
                else []
            )
            # Two pipelines instead of a conditional flip: albumentations cannot see the phrase.
            self._pipelines = {
                flip: A.Compose(
                    [*head, *([A.HorizontalFlip(p=0.5)] if flip else []), *tail],
                    additional_targets={"label": "mask"},
                )
                for flip in (True, False)
            }
        else:
            eval_pipeline = A.Compose([], additional_targets={"label": "mask"})
            self._pipelines = {True: eval_pipeline, False: eval_pipeline}
        self._rng = random.Random(seed)
        self._seeded_for: tuple[int, int | None] | None = None
        self._launch_rank = rank_and_world_size()  # seen in the rank's main process

    def _reseed(self) -> None:
        """Give each process / DataLoader worker (and each new worker iterator) its own random stream.

        Forked or pickled workers would otherwise share one albumentations state and produce
        identical augmentations.
        """
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), info.seed if info is not None else None)
        if key == self._seeded_for:
            return
        self._seeded_for = key
        seed = stream_entropy(self.seed, 0, rank_and_world_size(self._launch_rank)[0])
        for flip, pipeline in self._pipelines.items():
            pipeline.set_random_seed((seed + int(flip)) % 2**32)
        self._rng = random.Random(seed)

    def _template(self, phrase: str) -> str:
        if not phrase.strip():
            return ""
        return (
            sample_template(phrase, self._rng, self.templates)
            if self.train
            else apply_template(phrase, self.templates[0])
        )

    def _model_input(self, image: np.ndarray) -> torch.Tensor:
        """``3 x S x S`` float32: the model's own resize and normalization, written straight into the tensor."""
        tensor = torch.empty(1, 3, self.image_size, self.image_size)
        preprocess(image, self.preprocessing, out=tensor.numpy())
        return tensor[0]

    def _target(self, mask: np.ndarray) -> torch.Tensor:
        """``1 x S x S`` float32 in [0, 1]; for ``finish_on_device`` uint8 levels (a quarter of the bytes to
        send) when they hold the mask exactly, as they do for decoded masks resized with "nearest"."""
        side = (self.image_size, self.image_size)
        if self.finish_on_device and self.mask_interpolation == "nearest":
            levels = cv2.convertScaleAbs(mask, alpha=255.0)
            if np.array_equal(cv2.LUT(levels, MASK_LEVELS), mask):
                return torch.from_numpy(cv2.resize(levels, side, interpolation=cv2.INTER_NEAREST))[None]
        mask = cv2.resize(mask, side, interpolation=_INTERPOLATION[self.mask_interpolation])
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None]

    def _crop_to_send(self, image: np.ndarray) -> np.ndarray:
        """``image`` as sent for ``finish_batch``: as it is (a view; ``collate`` copies it), or resized here
        (PIL, as evaluation) for a filter ``batch_resize`` lacks or a crop over ``_SEND_LIMIT`` x S² pixels."""
        if self.preprocessing.resample in DEVICE_FILTERS and not self._too_big(image):
            return image
        return resize_image(np.ascontiguousarray(image), self.image_size, self.preprocessing.resample)

    def _too_big(self, image: np.ndarray) -> bool:
        return image.shape[0] * image.shape[1] > _SEND_LIMIT * self.image_size**2

    def _support(self, sample: Sample) -> dict[str, Any]:
        support, mask = sample.get("support"), sample.get("support_mask")
        if self.finish_on_device:
            empty = np.zeros((0, 0), np.uint8)
            if support is None:
                return {"support": np.zeros((0, 0, 3), np.uint8), "support_mask": empty}
            if mask is not None:
                crop, crop_mask = prompt_crop(support, mask, self.prompt_style)
                if not self._too_big(crop):
                    return {"support": crop, "support_mask": crop_mask}
                support = visual_prompt(support, mask, self.image_size, self.prompt_style)  # prompted here
            return {"support": self._crop_to_send(support), "support_mask": empty}
        if support is None:
            return {"support": torch.zeros(3, self.image_size, self.image_size)}
        if mask is not None:
            support = visual_prompt(support, mask, self.image_size, self.prompt_style)
        return {"support": self._model_input(support)}

    def __call__(self, sample: Sample) -> dict[str, Any]:
        self._reseed()
        text = sample.get("text", "")
        targets = {"image": sample["image"], "mask": np.asarray(sample["mask"], dtype=np.float32)}
        label = sample.get("label")
        if label is not None:
            if self.mask_interpolation != "nearest":
                raise ValueError(f"{sample['sample_id']}: class labels need mask_interpolation='nearest'")
            targets["label"] = label.astype(np.int32)  # cv2 cannot resize int64
        out = self._pipelines[not mentions_left_right(text)](**targets)
        has_support = sample.get("support") is not None
        item: dict[str, Any] = {
            "image": self._crop_to_send(out["image"])
            if self.finish_on_device
            else self._model_input(out["image"]),
            "mask": self._target(out["mask"]),
            "text": self._template(text),
            "phrase": text,  # before templating: equal phrases name the same thing
            "support_valid": torch.tensor(has_support),
            "text_weight": torch.tensor(float(sample.get("text_weight", 1.0)) if has_support else 1.0),
            "sample_id": sample["sample_id"],
            "class_id": torch.tensor(int(sample.get("class_id", NO_CLASS)), dtype=torch.long),
            **self._support(sample),
        }
        meta = sample.get("meta") or {}
        if "varied" in meta:  # shapes' look, flagged in a varied world only (see shapes.scenes.draw_sample)
            item["varied"] = torch.tensor(bool(meta["varied"]))
        if label is not None:
            side = (self.image_size, self.image_size)
            label = cv2.resize(out["label"], side, interpolation=cv2.INTER_NEAREST)
            item["label"] = torch.from_numpy(label.astype(np.int64))
        return item


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack per-sample dicts (``SampleTransform`` outputs) into the batch dict of ``schema.BATCH_KEYS``.

    Tensors are stacked along a new leading ``B`` axis, numpy arrays (the crops of
    ``finish_on_device``) packed into one ``Ragged`` each; strings become lists. ``label`` ``[B,S,S]``
    is included when every item has one. In a DataLoader worker the stacks are written straight into
    shared memory (``default_collate``), which saves copying every batch once more to send it.
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    if len({frozenset(item) for item in items}) > 1:
        raise ValueError(
            f"batch items have different keys (e.g. some lack a label map): {[item['sample_id'] for item in items]}"
        )
    batch: dict[str, Any] = {}
    for key, value in items[0].items():
        column = [item[key] for item in items]
        if isinstance(value, torch.Tensor):
            batch[key] = default_collate(column)
        elif isinstance(value, np.ndarray):
            batch[key] = Ragged.pack(column)
        else:
            batch[key] = column
    return batch
