"""``ClipSeg``: a frozen CLIP backbone plus the CLIPSeg decoder, with safetensors checkpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from clipseg.core.config import ClipSegConfig
from clipseg.core.errors import CheckpointError, key_mismatch_error
from clipseg.modeling.backbone import ClipBackbone, compact_clip_config
from clipseg.modeling.decoder import ClipSegDecoder
from clipseg.modeling.safetensors_io import save_safetensors

WEIGHTS_NAME = "model.safetensors"
# Metadata keys of our safetensors files (safetensors metadata is a str -> str map).
META_CONFIG = "clipseg_config"
META_WEIGHTS = "clipseg_weights"  # "decoder" (backbone referenced by name) or "full"
META_CLIP_CONFIG = "clip_config"  # architecture of the backbone in full files, so nothing is downloaded
META_NAME = "clipseg_name"  # the name given at `clipseg zoo pack` (clipseg.training.pack)
META_FINETUNE = "clipseg_finetune"  # JSON record of a `clipseg fit` run (clipseg.training.finetune_output)


def finetune_record(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The ``clipseg_finetune`` record of a model file's metadata (``{}`` for files not written by a fit)."""
    text = metadata.get(META_FINETUNE)
    return json.loads(text) if text else {}


def load_state(module: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """``module.load_state_dict(state)``, but a mismatch raises a ``CheckpointError`` listing every bad key."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        raise key_mismatch_error(source, missing=missing, unexpected=unexpected, wrong_shape=wrong_shape)
    module.load_state_dict(state)


def _check_images(pixel_values: Any, *, name: str, min_size: int) -> None:
    if not isinstance(pixel_values, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape B x 3 x H x W, got {type(pixel_values).__name__}"
        )
    if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
        raise ValueError(f"{name} must have shape B x 3 x H x W, got {tuple(pixel_values.shape)}")
    if pixel_values.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(pixel_values.shape)})")
    if min(pixel_values.shape[2:]) < min_size:
        raise ValueError(
            f"{name} of size {tuple(pixel_values.shape[2:])} is smaller than one {min_size}px patch"
        )
    if not pixel_values.is_floating_point():
        raise TypeError(f"{name} must be normalized floats, got dtype {pixel_values.dtype}")


class ClipSeg(nn.Module):
    """CLIPSeg (Lüddecke & Ecker, CVPR 2022): segment an image by text or image prompts.

    Each image passes the CLIP vision tower once (up to the deepest extracted block); the light
    decoder then runs for every prompt, batched over ``B * N`` (image, prompt) pairs.

    Args:
        config: the architecture; ``config.backbone`` is loaded (hub name / folder) or built (dict).
        clip_config: build the backbone from this ``CLIPConfig`` dict instead of loading
            ``config.backbone`` (used when a checkpoint carries the backbone weights itself).
    """

    def __init__(self, config: ClipSegConfig, *, clip_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = ClipBackbone(
            source=clip_config if clip_config is not None else config.backbone,
            extract_layers=config.extract_layers,
            frozen=config.freeze_backbone,
        )
        self.decoder = ClipSegDecoder.from_config(
            config,
            hidden_size=self.backbone.hidden_size,
            prompt_dim=self.backbone.projection_dim,
            patch_size=self.backbone.patch_size,
        )

    @property
    def prompt_dim(self) -> int:
        """Width ``D`` of the prompt embeddings (``conditionals``)."""
        return self.backbone.projection_dim

    @property
    def max_text_tokens(self) -> int:
        """Text positions of the text tower (77 for CLIP): the longest tokenized prompt it can embed."""
        return int(self.backbone.clip.config.text_config.max_position_embeddings)

    @property
    def image_size(self) -> int:
        """Input side length the model was trained at (any size works; this one is best)."""
        return self.config.image_size

    @property
    def patch_size(self) -> int:
        return self.backbone.patch_size

    @property
    def decoder_only(self) -> bool:
        """Whether ``save_pretrained`` writes only the decoder (the backbone is a frozen, named model)."""
        return self.config.freeze_backbone and not self.config.backbone_is_random

    # ----------------------------------------------------------------------------------- prompts

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Embed ``N`` tokenized text prompts (``N x L`` ids and mask, e.g. ``prompts.tokenize_prompts``).

        Returns:
            ``N x D`` conditionals.
        """
        if not isinstance(input_ids, Tensor) or input_ids.ndim != 2:
            got = tuple(input_ids.shape) if isinstance(input_ids, Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be an N x L tensor of token ids, got {got}")
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}): pass at least one prompt")
        if input_ids.is_floating_point():
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids {tuple(input_ids.shape)}"
            )
        return self.backbone.encode_text(input_ids, attention_mask)

    def encode_visual_prompt(self, pixel_values: Tensor) -> Tensor:
        """Embed ``N`` support images (``N x 3 x H x W``, e.g. from ``prompts.visual_prompt``) as ``N x D``."""
        _check_images(pixel_values, name="visual prompt pixel_values", min_size=self.patch_size)
        return self.backbone.encode_image(pixel_values)

    # ----------------------------------------------------------------------------------- forward

    def forward(self, pixel_values: Tensor, conditionals: Tensor) -> Tensor:
        """Segmentation logits of every image for every prompt.

        Args:
            pixel_values: ``B x 3 x H x W`` normalized images.
            conditionals: ``N x D`` prompt embeddings shared by all images, or ``B x N x D`` per image.

        Returns:
            ``B x N x H x W`` logits (``sigmoid`` gives probabilities).
        """
        _check_images(pixel_values, name="pixel_values", min_size=self.patch_size)
        self._check_conditionals(conditionals, batch=pixel_values.shape[0])
        return self.decode(self.backbone(pixel_values), conditionals, out_size=pixel_values.shape[2:])

    def encode_image(self, pixel_values: Tensor) -> list[Tensor]:
        """The backbone activations ``decode`` reads (``B x (1 + h * w) x C`` each) of ``B x 3 x H x W`` images.

        Computed once per image, they serve any number of prompts.
        """
        _check_images(pixel_values, name="pixel_values", min_size=self.patch_size)
        return self.backbone(pixel_values)

    def decode(
        self,
        activations: list[Tensor],
        conditionals: Tensor,
        *,
        out_size: tuple[int, int],
        pooled: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``B x N x H x W`` logits from the backbone's ``activations`` (as ``forward``, minus the checks).

        For callers that also use the activations (e.g. an auxiliary loss on the patch tokens).
        ``pooled``: also the decoder's ``B x N x 3R`` summary per prompt (``decoder.pool_tokens``).
        """
        height, width = out_size
        return self.decoder(
            activations,
            conditionals.to(activations[0].dtype),
            grid=(height // self.patch_size, width // self.patch_size),
            out_size=(height, width),
            pooled=pooled,
        )

    def _check_conditionals(self, conditionals: Any, *, batch: int) -> None:
        if not isinstance(conditionals, Tensor):
            raise TypeError(
                f"conditionals must be a torch.Tensor (N x D or B x N x D), got {type(conditionals).__name__}"
            )
        shape = tuple(conditionals.shape)
        if conditionals.ndim not in (2, 3) or shape[-1] != self.prompt_dim:
            raise ValueError(
                f"conditionals must have shape N x {self.prompt_dim} or B x N x {self.prompt_dim}, got {shape}"
            )
        if shape[-2] == 0:
            raise ValueError(f"conditionals hold no prompts (shape {shape}): pass at least one")
        if conditionals.ndim == 3 and shape[0] != batch:
            raise ValueError(f"conditionals {shape} are per image but there are {batch} images")

    # ----------------------------------------------------------------------------------- checkpoints

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``directory/model.safetensors`` with the config JSON in its metadata.

        A frozen, named backbone is not stored (the file references it by name, ~4 MB for rd64);
        a random or trained backbone is stored with the decoder.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        metadata = {"format": "pt", META_CONFIG: self.config.to_json()}
        if self.decoder_only:
            module, prefix, metadata[META_WEIGHTS] = self.decoder, "decoder.", "decoder"
        else:
            module, prefix, metadata[META_WEIGHTS] = self, "", "full"
            clip_config = compact_clip_config(self.backbone.clip.config)
            metadata[META_CLIP_CONFIG] = json.dumps(clip_config, sort_keys=True)
        tensors = {prefix + k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        path = directory / WEIGHTS_NAME
        save_safetensors(tensors, path, metadata=metadata)
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device = "cpu") -> ClipSeg:
        """Load a ``save_pretrained`` folder (or its ``.safetensors`` file); decoder-only files load their backbone."""
        path = Path(path)
        file = path / WEIGHTS_NAME if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no ClipSeg checkpoint at {file}")
        try:
            with safe_open(str(file), framework="pt") as handle:
                metadata = handle.metadata() or {}
        except SafetensorError as err:
            raise CheckpointError(
                f"{file} is not a safetensors model file ({err}); pass a zoo name, a file written by "
                "`clipseg zoo pack`, or a `.ckpt` of `clipseg fit`"
            ) from None
        if META_CONFIG not in metadata:
            raise CheckpointError(
                f"{file} is not a ClipSeg checkpoint: its metadata has no {META_CONFIG!r} entry"
            )
        config = ClipSegConfig.from_json(metadata[META_CONFIG])
        state = load_file(str(file))
        if metadata.get(META_WEIGHTS) == "decoder":
            model = cls(config)
            state = {k.removeprefix("decoder."): v for k, v in state.items()}
            load_state(model.decoder, state, source=str(file))
        else:
            clip_config = json.loads(metadata[META_CLIP_CONFIG]) if META_CLIP_CONFIG in metadata else None
            model = cls(config, clip_config=clip_config)
            load_state(model, state, source=str(file))
        return model.to(device)
