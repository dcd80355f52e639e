"""Liveness, readiness, warm-up and drain: what a load balancer or Kubernetes asks of the server.

- ``GET /livez``: 200 while the process serves HTTP.
- ``GET /readyz``: 200 once one warm-up forward has run (the model is loaded and its first, slow call
  is behind it); 503 before that and from the first SIGTERM / SIGINT on.
- Drain (``DrainingServer``): the first signal turns ``/readyz`` to 503 and refuses new work with 503
  while the server keeps listening (a balancer sees the 503 instead of a refused connection); the
  requests already accepted are answered; once none is left (or after ``grace_s``) uvicorn stops and
  the process exits 0. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from clipseg.inference.inputs import Job
from clipseg.serve.batcher import Batcher

# Probes and metrics answer during a drain; every other request is work, refused once draining.
PROBES = ("/livez", "/readyz", "/healthz", "/metrics")
# Gradio's heartbeat stream stays open as long as a page is; it is not work to wait for.
STREAMS = ("/heartbeat/",)
RETRY_AFTER_S = 1  # what a refused client is told to wait: one forward of a busy model, about


class Lifecycle:
    """The server's state: ``ready`` after warm-up, ``draining`` after a stop signal, work in flight."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False
        self.in_flight = 0  # requests other than probes, accepted and not yet answered
        self.warm_up_error: str | None = None

    def warm_up(self, batcher: Batcher) -> None:
        """Run one small job through ``batcher`` on a background thread; ``ready`` when it is done."""

        def run() -> None:
            job = Job(
                image=np.zeros((64, 64, 3), np.uint8), prompts=["an object"]
            )  # words every tokenizer knows
            try:
                batcher.submit(job).result()
            except Exception as err:  # the model cannot run: never ready, and /readyz says why
                self.warm_up_error = f"warm-up forward failed: {err}"
                return
            self.ready = True

        threading.Thread(target=run, name="clipseg-warm-up", daemon=True).start()

    def router(self) -> APIRouter:
        """``GET /livez`` and ``GET /readyz``."""
        router = APIRouter()

        @router.get("/livez")
        async def livez() -> dict:
            return {"status": "alive"}

        @router.get("/readyz", responses={503: {"description": "warming up, or draining"}})
        async def readyz() -> JSONResponse:
            if self.draining:
                return JSONResponse({"detail": "draining: the server is shutting down"}, status_code=503)
            if not self.ready:
                why = self.warm_up_error or "warming up: the model's first forward has not run yet"
                return JSONResponse({"detail": why}, status_code=503)
            return JSONResponse({"status": "ready"})

        return router


def busy_response(detail: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers of a 503 that tells the client to come back (``Retry-After``)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
    ]
    return body, headers


class Gate:
    """ASGI middleware: counts work in flight; once draining, refuses new work with 503."""

    def __init__(self, app: ASGIApp, *, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            return await self.app(scope, receive, send)
        if self.lifecycle.draining:
            body, headers = busy_response("the server is shutting down; send the request to another one")
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if any(stream in scope["path"] for stream in STREAMS):
            return await self.app(scope, receive, send)
        self.lifecycle.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.lifecycle.in_flight -= 1


def add_lifecycle(app: FastAPI, lifecycle: Lifecycle) -> None:
    """Mount ``/livez``, ``/readyz`` and the drain gate on ``app``."""
    app.include_router(lifecycle.router())
    app.add_middleware(Gate, lifecycle=lifecycle)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain on SIGTERM / SIGINT (module docstring); exit code 0 after it.

    ``lifecycle`` and ``batcher`` say when the accepted work is done; ``grace_s`` bounds the wait.
    """

    def __init__(self, config: uvicorn.Config, *, lifecycle: Lifecycle, batcher: Batcher, grace_s: float):
        super().__init__(config)
        self.lifecycle = lifecycle
        self.batcher = batcher
        self.grace_s = grace_s
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: object) -> None:
        # uvicorn's own handler stops at once and re-raises the signal at the end (exit code -15):
        # the first signal starts a drain instead; a second stops now.
        if self._drain_until is None:
            self._drain_until = time.monotonic() + self.grace_s
            self.lifecycle.draining = True
        else:
            self.should_exit = self.force_exit = True

    def drained(self) -> bool:
        """The accepted requests are answered and the model is idle, or the grace period is over."""
        assert self._drain_until is not None
        done = self.lifecycle.in_flight == 0 and self.batcher.idle
        return done or time.monotonic() > self._drain_until

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and not self.should_exit and self.drained():
            self.should_exit = True
        return await super().on_tick(counter)
