"""``clipseg serve [--model MODEL] [--host 127.0.0.1] [--port 7860]``: the web app and HTTP API.

Imports nothing heavy until the options are parsed, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import errno
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
a bad or unknown field (the API takes image, prompt, threshold) or a file that is not an image.
Requests that arrive together run through one forward of the model (request batching).
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
    return p


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
    if not 0 < args.port < 65536:
        print(f"clipseg serve: error: --port {args.port} is not a port; use 1..65535", file=sys.stderr)
        return 2
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        print("clipseg serve: error: --max-upload-mb and --max-pixels must be > 0", file=sys.stderr)
        return 2
    problem = bind_error(args.host, args.port)
    if problem is not None:
        print(f"clipseg serve: error: {problem}", file=sys.stderr)
        return 1
    try:
        from clipseg.cli.predict import load_predictor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # loading chatter; requests warn on their own
            predictor = load_predictor(args.model, args.device)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"clipseg serve: error: --model {args.model}: {err}", file=sys.stderr)
        return 1
    from clipseg.serve import UploadLimits, create_app, serve

    limits = UploadLimits(max_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels)
    if args.host not in LOOPBACK:
        print(
            f"clipseg serve: warning: --host {args.host} opens the server to other machines", file=sys.stderr
        )
    print(
        f"clipseg serve: {predictor.name} at http://{args.host}:{args.port}/ (API: /api/segment)", flush=True
    )
    serve(create_app(predictor, limits=limits), host=args.host, port=args.port)
    return 0
