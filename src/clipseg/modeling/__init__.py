"""CLIPSeg architecture: config, CLIP backbone wrapper, dense decoder and the full model."""

from clipseg.modeling.clipseg import ClipSeg
from clipseg.modeling.config import ClipSegConfig

__all__ = ["ClipSeg", "ClipSegConfig"]
