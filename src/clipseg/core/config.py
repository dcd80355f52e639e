"""Configs without torch: a CLIPSeg model's architecture and the image preprocessing it expects."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# PIL filter names; "bilinear" is what the original code (torchvision's Resize) and transformers'
# ViTImageProcessor (resample=2) use. Both resize with PIL, which antialiases when shrinking.
RESAMPLE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
DEFAULT_RESAMPLE = "bilinear"
# PIL.Image.Resampling values, as transformers' image processors store them.
_PIL_FILTER_NUMBERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class PreprocessConfig:
    """How an ``H x W x 3`` uint8 image becomes model input (see ``clipseg.core.preprocess``).

    Args:
        size: the square side ``S`` the image is resized to (no crop, aspect ratio not kept: as CLIPSeg).
        resample: PIL filter of that resize, one of ``RESAMPLE_FILTERS``.
        mean: per-channel mean of the normalization of the pixels scaled to [0, 1].
        std: per-channel standard deviation of that normalization.
    """

    size: int = 352
    resample: str = DEFAULT_RESAMPLE
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLE_FILTERS:
            raise ValueError(f"resample must be one of {RESAMPLE_FILTERS}, got {self.resample!r}")
        if int(self.size) < 1:
            raise ValueError(f"preprocessing size must be positive, got {self.size}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values each (std > 0), got {self.mean} and {self.std}")

    @classmethod
    def from_processor_config(cls, data: dict[str, Any], *, default_size: int = 352) -> PreprocessConfig:
        """The preprocessing a transformers ``preprocessor_config.json`` describes (e.g. CIDAS' ViTImageProcessor).

        ``size`` is an int or ``{"height", "width"}`` / ``{"shortest_edge"}``; ``resample`` is PIL's
        filter number (2 = bilinear, their default); ``do_normalize: false`` means no normalization.

        Raises:
            ValueError: a non-square size (CLIPSeg resizes to a square) or an unknown filter number.
        """
        size = data.get("size", default_size)
        if isinstance(size, dict):
            height, width = size.get("height"), size.get("width")
            if height is not None and width is not None and height != width:
                raise ValueError(
                    f"preprocessor size {height} x {width} is not square; CLIPSeg needs a square input"
                )
            size = height or size.get("shortest_edge") or default_size
        resample = data.get("resample", 2)
        if resample not in _PIL_FILTER_NUMBERS:
            raise ValueError(f"preprocessor resample {resample!r} is not a PIL filter number (0-5)")
        if data.get("do_normalize", True):
            mean, std = data.get("image_mean", CLIP_MEAN), data.get("image_std", CLIP_STD)
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return cls(size=int(size), resample=_PIL_FILTER_NUMBERS[resample], mean=mean, std=std)


@dataclass
class ClipSegConfig:
    """Everything needed to rebuild a ``ClipSeg`` model, stored as JSON in checkpoint metadata.

    Args:
        backbone: a ``transformers.CLIPModel`` hub name or local folder, or a ``CLIPConfig`` as a
            dict (``CLIPConfig.to_dict()``) for a randomly initialised backbone.
        extract_layers: 0-based indices of the vision encoder blocks whose outputs the decoder reads
            (transformers' ``hidden_states[i + 1]``); the paper uses (3, 7, 9), transformers' default
            is (3, 6, 9). The vision tower runs only up to block ``max(extract_layers)``.
        reduce_dim: width of the decoder (64 for rd64, 16 for rd16).
        decoder_heads: attention heads of each decoder block.
        decoder_intermediate_size: MLP width of each decoder block.
        decoder_hidden_act: MLP activation of the decoder blocks. "relu" in the original code and in
            transformers' ``CLIPSegDecoder`` (which ignores its own ``decoder_hidden_act`` setting).
        decoder_dropout: dropout inside the decoder blocks (0.1 in the original training, as
            ``nn.TransformerEncoderLayer``'s default; 0 in transformers).
        cond_layer: index of the decoder step at which FiLM conditioning is applied.
        complex_trans_conv: use the refined (two-stage) transposed-conv head.
        image_size: the input side length the model is trained and evaluated at.
        image_resample: the PIL filter that resizes inputs to ``image_size`` (see ``PreprocessConfig``);
            recorded so that training and inference resize alike. Files written before it existed
            read back as "bilinear", the original's and transformers' filter.
        image_mean: per-channel normalization mean of the backbone.
        image_std: per-channel normalization standard deviation of the backbone.
        freeze_backbone: keep the CLIP weights fixed (True for every paper experiment).
    """

    backbone: str | dict[str, Any] = "openai/clip-vit-base-patch16"
    extract_layers: tuple[int, ...] = (3, 6, 9)
    reduce_dim: int = 64
    decoder_heads: int = 4
    decoder_intermediate_size: int = 2048
    decoder_hidden_act: str = "relu"
    decoder_dropout: float = 0.1
    cond_layer: int = 0
    complex_trans_conv: bool = False
    image_size: int = 352
    image_resample: str = DEFAULT_RESAMPLE
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    freeze_backbone: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.extract_layers = tuple(int(i) for i in self.extract_layers)
        if isinstance(self.backbone, dict):
            # As it will read back from checkpoint metadata (JSON turns int dict keys into str).
            self.backbone = json.loads(json.dumps(self.backbone))
        self.image_mean = tuple(float(v) for v in self.image_mean)
        self.image_std = tuple(float(v) for v in self.image_std)
        _ = self.preprocessing  # validates resample, mean and std
        if not self.extract_layers or any(i < 0 for i in self.extract_layers):
            raise ValueError(f"extract_layers must be 0-based block indices, got {self.extract_layers}")
        if not 0 <= self.cond_layer < len(self.extract_layers):
            raise ValueError(
                f"cond_layer={self.cond_layer} must index one of the {len(self.extract_layers)} decoder steps"
            )
        if self.reduce_dim % self.decoder_heads:
            raise ValueError(
                f"reduce_dim={self.reduce_dim} is not divisible by decoder_heads={self.decoder_heads}"
            )

    @property
    def preprocessing(self) -> PreprocessConfig:
        """The input preprocessing this model was trained with."""
        return PreprocessConfig(
            size=self.image_size, resample=self.image_resample, mean=self.image_mean, std=self.image_std
        )

    @property
    def backbone_is_random(self) -> bool:
        return isinstance(self.backbone, dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipSegConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ClipSegConfig keys: {unknown}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ClipSegConfig:
        return cls.from_dict(json.loads(text))
