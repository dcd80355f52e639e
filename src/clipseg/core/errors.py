"""Errors raised while building or loading models; each message says what to do about it."""

from __future__ import annotations

from collections.abc import Iterable


class BackboneUnavailableError(OSError):
    """The CLIP backbone named in a config cannot be loaded (offline, not cached, or no such folder)."""


class NoShards(FileNotFoundError):
    """A local shard pattern matches no file (a stream of it would be empty every epoch)."""


class CheckpointError(ValueError):
    """A checkpoint file is not what the model expects (wrong keys, shapes or metadata)."""


class UnsafeCheckpointError(CheckpointError):
    """A ``.pth`` file needs arbitrary code to unpickle; loading it is refused."""


def _listing(label: str, names: Iterable[str], limit: int = 20) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return f"  {label} ({len(names)}): {shown}{more}"


def key_mismatch_error(
    source: str,
    *,
    missing: Iterable[str] = (),
    unexpected: Iterable[str] = (),
    wrong_shape: Iterable[str] = (),
) -> CheckpointError:
    """A ``CheckpointError`` that lists the missing, unexpected and wrongly shaped keys of ``source``."""
    parts = [f"checkpoint {source} does not match the model:"]
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        names = list(names)
        if names:
            parts.append(_listing(label, names))
    return CheckpointError("\n".join(parts))
