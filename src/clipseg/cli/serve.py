"""``clipseg serve [--model MODEL] [--host 127.0.0.1] [--port 7860] [--backend onnx --quantize int8]``:
the web app and HTTP API, run as an operated service (probes, metrics, back-pressure, drain).

Imports nothing heavy until the options are parsed, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import warnings

from clipseg.cli import DEFAULT_MODEL
from clipseg.core.help import DEVICE_HELP, MODEL_HELP, HelpFormatter

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EPILOG = """\
The page is at http://HOST:PORT/ ; the JSON API on the same server:
  curl -F image=@photo.png -F prompt="red square" -F prompt="blue circle" -F threshold=0.5 \\
       http://127.0.0.1:7860/api/segment
  -> {"width", "height", "model", "masks": [{"prompt", "area", "png_base64"}]}
  GET /healthz -> {"status": "ok", "model": ...}
Errors answer {"detail": MESSAGE}: 413 for uploads over --max-upload-mb or --max-pixels, 400 for
a bad or unknown field (the API takes image, prompt, threshold) or a file that is not an image,
503 + Retry-After when --max-queue requests already wait or the server drains, 504 after
--request-timeout. Requests that arrive together run through one forward of the model (batching).
Operations: GET /livez (alive), GET /readyz (200 after the warm-up forward, 503 while draining),
GET /metrics (Prometheus: clipseg_requests_total, clipseg_request_duration_seconds,
clipseg_batch_size, clipseg_queue_depth, clipseg_model_info). SIGTERM / Ctrl-C: refuse new work,
answer what was accepted (up to --grace seconds), exit 0; a second Ctrl-C stops at once.
One access-log line per request on stderr (--log-format text|json).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipseg serve",
        description="Serve a web app (Gradio) and a JSON API (FastAPI) for a model, with uvicorn.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=7860, metavar="N", help="TCP port")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, metavar="MB", help="largest request body in MB"
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=25_000_000,
        metavar="N",
        help="largest image in pixels (default: 25,000,000)",
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="runtime: torch, or onnx (onnxruntime; a model is exported once into the cache)",
    )
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="with --backend onnx: dynamic int8 quantization (exported once into the cache)",
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads inside each forward")
    ops = p.add_argument_group("operations")
    ops.add_argument(
        "--max-queue", type=int, default=64, metavar="N", help="requests that may wait; more get 503"
    )
    ops.add_argument(
        "--request-timeout", type=float, default=30.0, metavar="N", help="seconds until a request gets 504"
    )
    ops.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="N",
        help="seconds to answer accepted requests at shutdown",
    )
    ops.add_argument("--log-format", choices=("text", "json"), default="text", help="access-log lines")
    return p


def option_error(args: argparse.Namespace) -> str | None:
    """The first option out of range, as an error message, else ``None``."""
    if not 0 < args.port < 65536:
        return f"--port {args.port} is not a port; use 1..65535"
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        return "--max-upload-mb and --max-pixels must be > 0"
    if args.max_queue < 0:
        return f"--max-queue {args.max_queue}: give 0 or more (waiting requests)"
    if args.request_timeout <= 0:
        return f"--request-timeout {args.request_timeout:g}: give a number of seconds > 0"
    if args.grace < 0:
        return f"--grace {args.grace:g}: give 0 or more seconds"
    if args.threads is not None and args.threads < 1:
        return f"--threads {args.threads}: give 1 or more"
    if args.quantize and args.backend != "onnx":
        return "--quantize int8 runs on onnxruntime: add --backend onnx"
    return None


def bind_error(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (in use, no such address), else ``None``: checked before the
    model loads and before the URL is printed. uvicorn binds with ``SO_REUSEADDR`` too, so a port left
    in TIME_WAIT by an earlier run counts as free, as it is for uvicorn."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as err:
        why = err.strerror or str(err)
        if err.errno == errno.EADDRINUSE:
            return f"--port {port}: {host}:{port} is already in use ({why}); stop what runs there or pass another --port"
        return f"--host {host}: cannot serve on {host}:{port} ({why}); pass an address of this machine"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    wrong = option_error(args)
    if wrong is not None:
        print(f"clipseg serve: error: {wrong}", file=sys.stderr)
        return 2
    problem = bind_error(args.host, args.port)
    if problem is not None:
        print(f"clipseg serve: error: {problem}", file=sys.stderr)
        return 1
    if args.threads is not None:  # read by torch at import and by onnxruntime's sessions
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # loading chatter; requests warn on their own
            predictor = _load(args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"clipseg serve: error: --model {args.model}: {err}", file=sys.stderr)
        return 1
    from clipseg.core.images import let_pil_open
    from clipseg.serve import BatchLimits, UploadLimits, configure_access_log, create_app, serve

    limits = UploadLimits(max_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels)
    let_pil_open(limits.max_pixels)  # before the server's threads: --max-pixels decides, not PIL
    batching = BatchLimits(max_queue=args.max_queue, timeout_s=args.request_timeout)
    configure_access_log(args.log_format)
    if args.host not in LOOPBACK:
        print(
            f"clipseg serve: warning: --host {args.host} opens the server to other machines", file=sys.stderr
        )
    print(
        f"clipseg serve: {predictor.name} at http://{args.host}:{args.port}/ (API: /api/segment)", flush=True
    )
    app = create_app(predictor, limits=limits, batching=batching)
    serve(app, host=args.host, port=args.port, grace_s=args.grace)
    return 0


def _load(args: argparse.Namespace):
    """The ``Predictor`` the options name (``load_model`` with the backend, a ``.ckpt`` as predict)."""
    if args.backend == "onnx":
        from clipseg.zoo import load_model

        return load_model(args.model, device=args.device, backend="onnx", quantize=args.quantize)
    from clipseg.cli.predict import load_predictor

    predictor = load_predictor(args.model, args.device)
    if args.threads is not None:  # torch may already be imported (a .ckpt's training code)
        import torch

        torch.set_num_threads(args.threads)
    return predictor
