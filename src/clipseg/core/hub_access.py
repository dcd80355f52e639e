"""Whether the Hugging Face hub may be asked (``HF_HUB_OFFLINE``, one connection check per process), which
errors mean it cannot be reached, and how the installed ``huggingface_hub`` spells its command line."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import socket
from urllib.parse import urlparse


def hub_offline() -> bool:
    """Whether downloads are forbidden (``HF_HUB_OFFLINE`` is read both live and as the hub library saw it)."""
    from huggingface_hub import constants

    live = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return live or bool(constants.HF_HUB_OFFLINE)


@functools.cache
def _endpoint_answers(endpoint: str, timeout: float) -> bool:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether downloads may be tried: ``HF_HUB_OFFLINE`` is unset and the hub endpoint accepts a connection.

    Asked once per process. Without it, an offline machine spends about a minute in the hub library's
    retries (printing each) before every load from the hub fails anyway.
    """
    from huggingface_hub import constants

    return not hub_offline() and _endpoint_answers(constants.ENDPOINT, timeout)


def network_errors() -> tuple[type[Exception], ...]:
    """The exceptions of a hub that cannot be reached (no route, refused, timed out).

    huggingface_hub before 1.0 talks through ``requests``, 1.x and later through ``httpx``; either
    may be missing, so only the installed ones are listed.
    """
    errors: list[type[Exception]] = []
    for module, names in (("requests", ("ConnectionError", "Timeout")), ("httpx", ("TransportError",))):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        errors += [getattr(found, name) for name in names]
    return tuple(errors)


def hub_command(args: str) -> str:
    """The hub command line ``args`` (``download org/name``, ``auth login``, ``upload ...``) as the
    installed huggingface_hub spells it: ``hf ...`` (0.34 on; 1.x has only that), before that
    ``huggingface-cli ...`` (whose ``auth login`` is ``login``)."""
    try:
        new_cli = importlib.util.find_spec("huggingface_hub.cli.hf") is not None
    except ModuleNotFoundError:  # no huggingface_hub.cli package at all (before 0.34)
        new_cli = False
    return f"hf {args}" if new_cli else "huggingface-cli " + args.removeprefix("auth ")
