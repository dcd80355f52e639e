"""The JSON API: ``POST /api/segment`` and ``GET /healthz``, plus the upload limits every route shares.

``POST /api/segment`` takes multipart form data: ``image`` (a file), ``prompt`` (repeated, one per
mask), an optional ``threshold`` in (0, 1), ``min_area`` (pixels, default 0: regions and instances
smaller than this are dropped, as ``clipseg predict --min-area`` and the page's "drop regions under")
and the flags ``instances`` and ``labels``; it answers
``{"width", "height", "model", "masks": [{"prompt", "presence", "area", "png_base64"}]}`` where each
mask is an 8-bit grayscale PNG (soft, or 0/255 with a threshold or a ``min_area``, which binarises at
0.5 without a threshold), ``presence`` the model's probability that the prompt's object is in the
image (``clipseg.inference.presence``) and ``area`` the share of its pixels at or above the
threshold (0.5 without one). ``instances=true`` adds to each mask ``instances: [{box, area, score,
png_base64}]`` (box ``[x0, y0, x1, y1]``), ``labels=true`` a ``labels_png_base64`` (8-bit: 0
background, k + 1 prompt k). Every error answers ``{"detail": message}`` with one message string:
400 for a bad input (a missing or malformed field, and a field the API does not take, e.g.
``negative``: refused rather than ignored), 413 for an upload over the byte or pixel limit, 503 with
``Retry-After`` when the queue is full (or the server drains), 504 past the request timeout.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clipseg.core.images import ImageError, TooManyPixels, load_image, open_decoded
from clipseg.inference.inputs import Job
from clipseg.inference.postprocess import PostProcess, postprocess
from clipseg.inference.presence import prompt_presence
from clipseg.inference.segment import find_instances, label_map
from clipseg.inference.writers import mask_to_gray
from clipseg.serve.batcher import Batcher, Busy
from clipseg.serve.lifecycle import RETRY_AFTER_S


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    """Largest request body (bytes, any route) and largest image (pixels) the server accepts."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_prompts: int = 16


class TooLarge(HTTPException):
    """HTTP 413 with a message that says which limit and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


def read_upload(data: bytes, limits: UploadLimits, *, name: str = "image") -> np.ndarray:
    """``H x W x 3`` uint8 pixels of an uploaded file; ``HTTPException`` 400 / 413 with a message.

    The size is read from the header before any pixel is decoded, so an oversized image costs no memory.
    """
    if not data:
        raise HTTPException(400, f"{name}: the upload is empty (0 bytes); send an image file")
    try:
        with open_decoded(io.BytesIO(data), limits.max_pixels) as img:
            return load_image(img, name=name)
    except TooManyPixels as err:
        if err.size is None:
            raise TooLarge(f"{name}: the image is too large to decode safely; send a smaller image") from None
        raise TooLarge(
            f"{name}: {err.size[0]}x{err.size[1]} pixels is over this server's limit of "
            f"{err.limit:,} pixels; send a smaller image"
        ) from None
    except UnidentifiedImageError:
        raise HTTPException(400, f"{name}: not a readable image; send a PNG, JPEG or WebP file") from None
    except (OSError, SyntaxError) as err:  # a truncated or corrupt file of a known format
        raise HTTPException(400, f"{name}: not a readable image ({err}); send a whole image file") from None
    except ImageError as err:
        raise HTTPException(400, str(err)) from None


def mask_png(mask: np.ndarray) -> bytes:
    """An ``H x W`` mask in [0, 1] as 8-bit grayscale PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(mask_to_gray(mask)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(mask: np.ndarray) -> str:
    """``mask_png`` of an ``H x W`` mask (bool or [0, 1]) as base64 text."""
    return base64.b64encode(mask_png(mask.astype(np.float32))).decode("ascii")


def mask_area(mask: np.ndarray, threshold: float | None) -> float:
    """Share of the mask's pixels at or above ``threshold`` (0.5 without one)."""
    return float((mask >= (0.5 if threshold is None else threshold)).mean())


FIELDS = (
    "image",
    "prompt",
    "threshold",
    "min_area",
    "instances",
    "labels",
)  # the form fields of /api/segment


def validation_message(err: RequestValidationError) -> str:
    """FastAPI's list of field errors as one message: ``field: what is wrong; ...``."""
    parts = []
    for error in err.errors():
        field = ".".join(str(part) for part in error["loc"] if part not in ("body", "query"))
        message = error["msg"][:1].lower() + error["msg"][1:]
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts) + f" (fields: {', '.join(FIELDS)})"


async def validation_error(request: Request, err: Exception) -> JSONResponse:
    """A missing or malformed field: 400 with one message, as every other bad input (not FastAPI's 422 list)."""
    assert isinstance(err, RequestValidationError)
    return JSONResponse({"detail": validation_message(err)}, status_code=400)


async def run_job(
    batcher: Batcher, job: Job, request: Request, *, started: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """``job``'s masks (and the decoder's summary of its prompts, ``JobFuture.pooled``) through ``batcher``, within the request timeout counted from ``started``
    (``time.monotonic()``); ``HTTPException`` 503 with ``Retry-After`` when the queue is full, 504 when
    the time is up (the job is dropped if its forward has not started)."""
    try:
        future = batcher.submit(job)
    except Busy as err:
        raise HTTPException(503, str(err), headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    left = batcher.limits.timeout_s - (time.monotonic() - started)
    try:
        # On timeout wait_for cancels the wrapped future, which cancels ``future``: a job still queued
        # is dropped from its batch, a running one finishes for nobody.
        masks = await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(left, 0.0))
    except TimeoutError:
        raise HTTPException(
            504, f"the request was not answered within {batcher.limits.timeout_s:g} s; try again later"
        ) from None
    finally:
        request.state.batch_size = future.batch_size  # for the access log
    return masks, future.pooled


def api_router(batcher: Batcher, limits: UploadLimits) -> APIRouter:
    """The ``/api/segment`` and ``/healthz`` routes over ``batcher``'s model."""
    router = APIRouter()
    model = batcher.predictor.name

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "model": model}

    @router.post(
        "/api/segment",
        responses={
            400: {"description": "a bad or unknown field"},
            413: {"description": "an upload over the byte or pixel limit"},
            503: {"description": "busy (queue full) or shutting down: retry after `Retry-After` seconds"},
            504: {"description": "not answered within the request timeout"},
        },
    )
    async def segment(
        request: Request,
        image: Annotated[UploadFile, File(description="the image to segment")],
        prompt: Annotated[list[str] | None, Form(description="a text prompt; repeat for more masks")] = None,
        threshold: Annotated[float | None, Form(description="binarise masks at this probability")] = None,
        min_area: Annotated[int, Form(description="drop regions and instances under this many pixels")] = 0,
        instances: Annotated[bool, Form(description="add each mask's separate objects")] = False,
        labels: Annotated[bool, Form(description="add one label map of all prompts")] = False,
    ) -> dict:
        started = time.monotonic()
        unknown = sorted(set((await request.form()).keys()) - set(FIELDS))  # parsed once, cached
        if unknown:
            raise HTTPException(
                400, f"unknown field(s) {', '.join(unknown)}: this API takes {', '.join(FIELDS)}"
            )
        prompts = [p.strip() for p in prompt or []]
        if not prompts or not all(prompts):
            raise HTTPException(
                400, "prompt: give at least one non-empty `prompt` field (repeat it for more)"
            )
        if len(prompts) > limits.max_prompts:
            raise HTTPException(
                400, f"prompt: {len(prompts)} prompts, this server takes at most {limits.max_prompts}"
            )
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise HTTPException(400, f"threshold: must be in (0, 1), got {threshold}")
        if min_area < 0:
            raise HTTPException(400, f"min_area: must be >= 0 pixels, got {min_area}")
        pixels = read_upload(await image.read(), limits)
        # Probabilities come back whole (presence reads them); threshold and min_area are applied here.
        probs, pooled = await run_job(batcher, Job(image=pixels, prompts=prompts), request, started=started)
        post = PostProcess(threshold=threshold, min_area=min_area)
        masks = postprocess(probs, None, post)  # soft, unless a threshold or min_area is given
        cut = post.cut
        scores = prompt_presence(probs, None, post, batcher.predictor.calibration, pooled)
        entries = []
        for k, (text, mask) in enumerate(zip(prompts, masks)):
            entry = {
                "prompt": text,
                "presence": round(float(scores[k]), 6),
                "area": mask_area(mask, threshold),
                "png_base64": png_base64(mask),
            }
            if instances:  # the watershed split runs only when asked for
                entry["instances"] = [
                    {
                        "box": list(i.box),
                        "area": i.area,
                        "score": round(i.score, 6),
                        "png_base64": png_base64(i.mask),
                    }
                    for i in find_instances(probs[k], k, threshold=cut, min_area=min_area)
                ]
            entries.append(entry)
        answer = {
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "model": model,
            "masks": entries,
        }
        if labels:
            gray = Image.fromarray(label_map(probs, cut).astype(np.uint8))
            buffer = io.BytesIO()
            gray.save(buffer, format="PNG")
            answer["labels_png_base64"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        return answer

    return router


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` (declared or streamed) gets 413 and a message."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        detail = (
            f"the upload is larger than this server's limit of {self.max_bytes:,} bytes; send a smaller file"
        )
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            # Past the limit the app is told the client left (it stops reading) and gets the 413 from
            # here: an exception would be turned into a 400 by the app's own form parsing.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes and not started:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 has been sent; whatever the app says next is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def add_api(app: FastAPI, batcher: Batcher, limits: UploadLimits) -> None:
    """Mount the API routes and the body limit on ``app``."""
    app.include_router(router=api_router(batcher, limits))
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes)
