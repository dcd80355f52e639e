"""``create_app(predictor)``: the Gradio page at ``/`` and the JSON API on one FastAPI app; ``serve`` runs it.

Safe defaults: the server binds 127.0.0.1; uploads over ``UploadLimits`` get 413; Gradio serves only
its own files (no ``allowed_paths``), the FastAPI docs pages (which load scripts from a CDN) are off.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, redirect_stdout
from pathlib import Path

import gradio as gr
from fastapi import FastAPI

from clipseg.inference.predictor import Predictor
from clipseg.serve.api import UploadLimits, add_api
from clipseg.serve.app import build_blocks, theme_arguments
from clipseg.serve.batcher import Batcher, BatchLimits


def create_app(
    predictor: Predictor, *, limits: UploadLimits | None = None, batching: BatchLimits | None = None
) -> FastAPI:
    """A FastAPI app serving ``predictor``: the page at ``/``, ``POST /api/segment``, ``GET /healthz``.

    The model runs on one worker thread (``Batcher``) that batches requests arriving together; it stops
    when the app shuts down. ``app.state.batcher`` exposes it (batch counts, for tests and benchmarks).
    """
    limits = limits or UploadLimits()
    batcher = Batcher(predictor, limits=batching)
    files_dir = Path(tempfile.mkdtemp(prefix="clipseg-serve-"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()
        shutil.rmtree(files_dir, ignore_errors=True)

    app = FastAPI(title="clipseg", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    add_api(app, batcher, limits)
    blocks = build_blocks(batcher, limits, files_dir)
    blocks.queue(default_concurrency_limit=batcher.limits.max_images)
    with redirect_stdout(io.StringIO()):  # Gradio 5.50 prints a stray "new /" at every mount
        return gr.mount_gradio_app(
            app,
            blocks,
            path="/",
            max_file_size=limits.max_bytes,
            ssr_mode=False,
            pwa=False,
            **theme_arguments(mounting=True),
        )


def serve(app: FastAPI, *, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")


@contextmanager
def running(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``app`` with uvicorn on a background thread; yields its base URL (``port=0``: a free port).

    For tests, benchmarks and screenshots; the server stops (and the batcher with it) on exit.
    """
    import uvicorn

    # Open streams (Gradio's heartbeats) get a few seconds at shutdown, not forever.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="clipseg-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
