"""The web app and HTTP API (``clipseg serve``): Gradio on FastAPI, run by uvicorn, with request batching.

Imports only ``clipseg.core``, ``clipseg.inference`` and ``clipseg.zoo`` of this package. Gradio's
analytics are switched off before Gradio is imported: the server never calls home.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from clipseg.serve.api import UploadLimits
from clipseg.serve.batcher import Batcher, BatchLimits, Busy
from clipseg.serve.metrics import configure_access_log
from clipseg.serve.server import create_app, running, serve

__all__ = [
    "BatchLimits",
    "Batcher",
    "Busy",
    "UploadLimits",
    "configure_access_log",
    "create_app",
    "running",
    "serve",
]
