"""CLIPSeg architecture: config, CLIP backbone wrapper, dense decoder and the full model."""

from clipseg.core.config import ClipSegConfig
from clipseg.modeling.clipseg import ClipSeg

__all__ = ["ClipSeg", "ClipSegConfig"]
