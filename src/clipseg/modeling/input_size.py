"""Move a model to another input size: its vision position embedding resampled to the new patch grid.

A ViT's only size-bound weights are its position embeddings (one class position, then one per patch
of the ``g x g`` grid). Resizing the grid bicubically (``align_corners=False``), the class position
kept, is what transformers' ``interpolate_pos_encoding`` does on every forward pass at another size
(and timm's ``resample_abs_pos_embed`` once): a model moved with ``with_input_size`` computes what
the original computes when fed that size, and then trains at it.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping

import torch
from torch import Tensor
from torch.nn import functional as F

from clipseg.core.config import ClipSegConfig
from clipseg.modeling.clipseg import ClipSeg, load_state

log = logging.getLogger(__name__)

POSITION_KEY = "backbone.clip.vision_model.embeddings.position_embedding.weight"


def resample_position_embedding(weight: Tensor, grid: int) -> Tensor:
    """``(1 + g * g) x C`` positions (class first, then the ``g x g`` grid row by row) to ``(1 + grid * grid) x C``.

    Raises:
        ValueError: ``weight`` is not a class position plus a square grid, or ``grid < 1``.
    """
    side = math.isqrt(weight.shape[0] - 1)
    if weight.ndim != 2 or side * side != weight.shape[0] - 1 or side < 1:
        raise ValueError(f"position embedding {tuple(weight.shape)} is not 1 + a square grid of positions")
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    cls_pos, patches = weight[:1], weight[1:]
    # B x C x g x g for interpolate; in float32, as bicubic is not implemented for every dtype.
    patches = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(grid * grid, -1).to(weight.dtype)
    return torch.cat([cls_pos, patches])


def fit_position_embedding(state: Mapping[str, Tensor], model: ClipSeg, *, source: str) -> dict[str, Tensor]:
    """``state`` with its vision position embedding resampled to ``model``'s grid when the sizes differ
    (logged, naming ``source``); every other tensor as it is."""
    state = dict(state)
    weight, expected = state.get(POSITION_KEY), model.state_dict().get(POSITION_KEY)
    if weight is None or expected is None or weight.shape == expected.shape:
        return state
    grid = math.isqrt(expected.shape[0] - 1)
    state[POSITION_KEY] = resample_position_embedding(weight, grid)
    old = math.isqrt(weight.shape[0] - 1)
    log.warning(
        "%s: vision position embedding resampled from a %dx%d to a %dx%d patch grid (input %d px)",
        source, old, old, grid, grid, model.image_size,
    )  # fmt: skip
    return state


def with_input_size(model: ClipSeg, image_size: int) -> ClipSeg:
    """A copy of ``model`` that takes ``image_size`` px inputs (its config and position embedding moved).

    Raises:
        ValueError: ``model`` has a named (downloaded) backbone, whose config this does not rewrite, or
            ``image_size`` is not a multiple of its patch size.
    """
    config = model.config
    if not config.backbone_is_random:
        raise ValueError("with_input_size moves models whose backbone config they hold (shapes-tiny)")
    backbone = copy.deepcopy(config.backbone)
    patch = int(backbone["vision_config"]["patch_size"])
    if image_size % patch:
        raise ValueError(f"image_size {image_size} is not a multiple of the patch size {patch}")
    backbone["vision_config"]["image_size"] = image_size
    resized = ClipSeg(
        ClipSegConfig.from_dict({**config.to_dict(), "backbone": backbone, "image_size": image_size})
    )
    source = f"with_input_size({image_size})"
    load_state(resized, fit_position_embedding(model.state_dict(), resized, source=source), source=source)
    return resized.train(model.training)
