"""Whether the Hugging Face hub may be asked: ``HF_HUB_OFFLINE`` and one connection check per process."""

from __future__ import annotations

import functools
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
