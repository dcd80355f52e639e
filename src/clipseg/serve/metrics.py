"""Prometheus metrics (``GET /metrics``) and the access log: one line per request.

Each app has its own ``CollectorRegistry`` (tests and benchmarks run several apps in one process).
Metrics: ``clipseg_requests_total{route,status}``, ``clipseg_request_duration_seconds{route}``
(histogram), ``clipseg_batch_size`` (histogram of requests per forward), ``clipseg_queue_depth``
(gauge: requests waiting for the model), ``clipseg_model_info{model,backend}`` (always 1).

The access log is the logger ``clipseg.access``: ``METHOD ROUTE STATUS MS ms batch=N`` per request,
or one JSON object per line with ``configure_access_log("json")``.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clipseg.serve.batcher import Batcher

# Routes are labelled by name; everything else (the Gradio page and its files, unknown paths) is
# "page", so a client cannot grow the label set.
ROUTES = ("/api/segment", "/healthz", "/livez", "/readyz", "/metrics")
LOG_FORMATS = ("text", "json")
access_log = logging.getLogger("clipseg.access")


class Metrics:
    """The app's collectors, registered in their own ``registry``."""

    def __init__(self, batcher: Batcher, *, model: str, backend: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "clipseg_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "clipseg_request_duration_seconds",
            "time from request to answer",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "clipseg_batch_size",
            "requests per forward of the model",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=self.registry,
        )
        queue_depth = Gauge("clipseg_queue_depth", "requests waiting for the model", registry=self.registry)
        queue_depth.set_function(lambda: batcher.depth)
        Info("clipseg_model", "the served model", registry=self.registry).info(
            {"model": model, "backend": backend}
        )

    def router(self) -> APIRouter:
        """``GET /metrics`` in Prometheus' text format."""
        router = APIRouter()

        @router.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return router


class Observe:
    """ASGI middleware: counts and times every HTTP request and writes its access-log line.

    The batch size comes from the route (``request.state.batch_size``, set by ``/api/segment``).
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # an app that fails before answering: the server answers 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - start
            route = scope["path"] if scope["path"] in ROUTES else "page"
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.duration.labels(route).observe(seconds)
            batch = scope.get("state", {}).get("batch_size", 0)
            log_request(scope["method"], scope["path"], status, seconds * 1000, batch)


def log_request(method: str, path: str, status: int, ms: float, batch: int) -> None:
    """One access-log line (the handler's formatter decides text or JSON)."""
    access_log.info(
        "%s %s %d %.1fms batch=%d",
        method,
        path,
        status,
        ms,
        batch,
        extra={
            "fields": {
                "method": method,
                "route": path,
                "status": status,
                "ms": round(ms, 1),
                "batch_size": batch,
            }
        },
    )


class JsonLines(logging.Formatter):
    """A record's ``fields`` (or its message) as one JSON object, with a UTC timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {"message": record.getMessage()}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return json.dumps({"time": f"{stamp}.{int(record.msecs):03d}Z", **fields})


def configure_access_log(log_format: str = "text") -> None:
    """Send the access log to stderr, one line per request, as ``text`` or ``json``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLines() if log_format == "json" else logging.Formatter("%(asctime)s %(message)s")
    )
    access_log.handlers[:] = [handler]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def add_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Mount ``/metrics`` and the request observer on ``app``."""
    app.include_router(metrics.router())
    app.add_middleware(Observe, metrics=metrics)
