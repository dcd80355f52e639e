"""The zoo's one error type (its own module so that every zoo module can raise it without import cycles)."""

from __future__ import annotations


class ZooError(RuntimeError):
    """A model that cannot be resolved or verified; the message says what to do."""
