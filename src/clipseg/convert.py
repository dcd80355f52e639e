"""Checkpoint converters (transformers CIDAS folders, original ``.pth`` files); see ``clipseg.modeling.convert``."""

from clipseg.modeling.convert import (
    config_from_original,
    config_from_transformers,
    convert_original_checkpoint,
    convert_transformers_checkpoint,
    from_transformers,
    read_original_state,
)
from clipseg.modeling.errors import CheckpointError, UnsafeCheckpointError

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "config_from_original",
    "config_from_transformers",
    "convert_original_checkpoint",
    "convert_transformers_checkpoint",
    "from_transformers",
    "read_original_state",
]
