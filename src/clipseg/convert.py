"""Checkpoint converters (transformers CIDAS folders, original ``.pth`` files); see ``clipseg.modeling.convert``."""

from clipseg.core.errors import CheckpointError, UnsafeCheckpointError
from clipseg.modeling.convert import (
    config_from_original,
    config_from_transformers,
    convert_original_checkpoint,
    convert_transformers_checkpoint,
    from_transformers,
    read_original_state,
)

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
