"""``create_app(predictor)``: the Gradio page at ``/`` and the JSON API on one FastAPI app; ``serve`` runs it.

Operated-service routes live beside them: ``/livez``, ``/readyz`` (``lifecycle``), ``/metrics``
(``metrics``); ``serve`` drains on SIGTERM / SIGINT and exits 0.

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
from clipseg.serve.lifecycle import DrainingServer, Lifecycle, add_lifecycle
from clipseg.serve.metrics import Metrics, add_metrics


def backend_name(predictor: Predictor) -> str:
    """``torch`` / ``onnx``: the module the predictor's backend class lives in."""
    return type(predictor.backend).__module__.rpartition(".")[2]


def create_app(
    predictor: Predictor, *, limits: UploadLimits | None = None, batching: BatchLimits | None = None
) -> FastAPI:
    """A FastAPI app serving ``predictor``: the page at ``/``, ``POST /api/segment``, ``GET /healthz``,
    ``/livez``, ``/readyz``, ``/metrics``.

    The model runs on one worker thread (``Batcher``) that batches requests arriving together; it stops
    when the app shuts down. At startup one warm-up forward runs in the background (``/readyz`` turns
    200 after it). ``app.state`` holds ``batcher``, ``lifecycle`` and ``metrics`` (tests, benchmarks).
    """
    limits = limits or UploadLimits()
    lifecycle = Lifecycle()
    batcher = Batcher(predictor, limits=batching)
    metrics = Metrics(batcher, model=predictor.name, backend=backend_name(predictor))
    batcher.on_batch = metrics.batch_size.observe
    files_dir = Path(tempfile.mkdtemp(prefix="clipseg-serve-"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle.warm_up(batcher)
        yield
        batcher.close()
        shutil.rmtree(files_dir, ignore_errors=True)

    app = FastAPI(title="clipseg", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher, app.state.lifecycle, app.state.metrics = batcher, lifecycle, metrics
    add_api(app, batcher, limits)
    add_lifecycle(app, lifecycle)
    add_metrics(app, metrics)
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


def serve(app: FastAPI, *, host: str = "127.0.0.1", port: int = 7860, grace_s: float = 30.0) -> None:
    """Run ``app`` with uvicorn until SIGTERM / SIGINT, then drain for up to ``grace_s`` seconds
    (``lifecycle``); the access log replaces uvicorn's."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=5
    )
    state = app.state
    DrainingServer(config, lifecycle=state.lifecycle, batcher=state.batcher, grace_s=grace_s).run()


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
