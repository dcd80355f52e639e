"""Input checks shared by the metrics, with errors that name the offending argument.

Shape and dtype checks are free. Value checks (NaN, range, binary, class indices) need one look at the data on
the host: :class:`Checks` gathers all value checks of one ``update`` call and pays for them with a single
device-to-host synchronisation; metrics built with ``validate_args=False`` skip them.
"""

from __future__ import annotations

import torch
from torch import Tensor


def expect_ndim(name: str, tensor: Tensor, layout: str) -> None:
    """Raise unless ``tensor`` has as many dimensions as ``layout`` (e.g. ``"B x H x W"``) names."""
    if tensor.ndim != len(layout.split(" x ")):
        raise ValueError(f"`{name}` must have shape {layout}, got {tuple(tensor.shape)}")


def expect_same_shape(name: str, tensor: Tensor, ref_name: str, ref_shape: torch.Size) -> None:
    """Raise unless ``tensor`` has ``ref_shape``, the shape that argument ``ref_name`` implies."""
    if tensor.shape != ref_shape:
        raise ValueError(
            f"`{name}` has shape {tuple(tensor.shape)}, expected {tuple(ref_shape)} to match `{ref_name}`"
        )


def expect_integer(name: str, tensor: Tensor) -> None:
    """Raise unless ``tensor`` holds integers (class indices)."""
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor of class indices, got {tensor.dtype}")


class Checks:
    """Value checks of one ``update`` call, raised (first failure first) after a single host sync.

    Each check records a 0-d bool tensor that is ``True`` when it failed; nothing is recorded when
    ``enabled`` is false.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pending: list[tuple[Tensor, str]] = []

    def _add(self, failed: Tensor, message: str) -> None:
        self._pending.append((failed, message))

    def probabilities(self, name: str, tensor: Tensor, *, from_logits: bool) -> Tensor:
        """Check probabilities (or logits if ``from_logits``, then squashed with a sigmoid); return probabilities."""
        if from_logits:
            self.floats_without_nan(name, tensor)
            return tensor.sigmoid()
        self.unit_interval(name, tensor, hint=" (pass from_logits=True for logits)")
        return tensor

    def unit_interval(self, name: str, tensor: Tensor, hint: str = "") -> None:
        """Check floating-point values without NaN, in [0, 1]."""
        self.floats_without_nan(name, tensor)
        if self.enabled:
            self._add(((tensor < 0) | (tensor > 1)).any(), f"`{name}` must lie in [0, 1]{hint}")

    def floats_without_nan(self, name: str, tensor: Tensor) -> None:
        """Check a floating-point tensor without NaN."""
        if not tensor.is_floating_point():
            raise TypeError(f"`{name}` must be a floating-point tensor, got {tensor.dtype}")
        if self.enabled:
            self._add(tensor.isnan().any(), f"`{name}` contains NaN")

    def binary(self, name: str, tensor: Tensor) -> None:
        """Check that every value is 0 or 1 (any dtype)."""
        if self.enabled:
            self._add(((tensor != 0) & (tensor != 1)).any(), f"`{name}` must be binary (0/1 or bool)")

    def labels(self, name: str, tensor: Tensor, num_classes: int, ignore_index: int | None = None) -> None:
        """Check class indices in ``[0, num_classes)``, or equal to ``ignore_index``."""
        expect_integer(name, tensor)
        if self.enabled:
            bad = (tensor < 0) | (tensor >= num_classes)
            allowed = f"[0, {num_classes})"
            if ignore_index is not None:
                bad &= tensor != ignore_index
                allowed += f" or the ignore_index {ignore_index}"
            self._add(bad.any(), f"`{name}` must hold class indices in {allowed}")

    def raise_first_failure(self) -> None:
        """Raise ``ValueError`` with the message of the first failed check, if any failed."""
        if not self._pending:
            return
        device = self._pending[0][0].device
        if not bool(torch.stack([failed.to(device) for failed, _ in self._pending]).any()):
            return
        for failed, message in self._pending:
            if bool(failed):
                raise ValueError(message)
