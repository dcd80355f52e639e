"""Request batching of ``clipseg serve``: 16 concurrent ``POST /api/segment`` against 16 sequential ones.

A server with the shipped shapes-tiny runs in this process (uvicorn on a thread, 127.0.0.1, free
port); 16 client threads send one request each (16 different 256 x 256 shapes scenes, 2 text prompts,
PNG masks back). Sequential: the same 16 requests one after the other, each waiting for its answer.
Concurrent: all 16 released at once; the server's batcher runs the requests that arrive within its
window through one forward. For reference, the same concurrent burst against a server whose batches
hold one request (``max_images=1``) shows what batching adds to mere concurrency. Runs are
interleaved; the best of each counts.

    python bench/serve_bench.py [--quick] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

REQUESTS = 16
PROMPTS = ["red square", "blue circle"]


def scenes() -> list[bytes]:
    from PIL import Image

    from clipseg.data.shapes.scenes import ShapesConfig, draw_sample

    out = []
    for i in range(REQUESTS):
        buffer = io.BytesIO()
        image = draw_sample(i, 0, split="test", config=ShapesConfig(size=256))[0]["image"]
        Image.fromarray(image).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def post(client, url: str, image: bytes) -> None:
    response = client.post(f"{url}/api/segment", files={"image": ("x.png", image)}, data={"prompt": PROMPTS})
    if response.status_code != 200:
        raise SystemExit(f"request failed: {response.status_code} {response.text}")


def sequential(client, url: str, images: list[bytes]) -> float:
    start = time.perf_counter()
    for image in images:
        post(client, url, image)
    return time.perf_counter() - start


def concurrent(client, url: str, images: list[bytes], pool: ThreadPoolExecutor) -> float:
    barrier = threading.Barrier(len(images) + 1)

    def send(image: bytes) -> None:
        barrier.wait()
        post(client, url, image)

    futures = [pool.submit(send, image) for image in images]
    barrier.wait()  # every thread is ready: the clock starts with the burst
    start = time.perf_counter()
    for future in futures:
        future.result()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="two repeats")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs of each (the best counts)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import httpx
    import torch

    from clipseg import load_model
    from clipseg.serve import BatchLimits, create_app, running

    torch.set_num_threads(args.threads)
    predictor = load_model("shapes-tiny", device="cpu")
    images = scenes()
    batched = create_app(predictor)
    unbatched = create_app(predictor, batching=BatchLimits(max_images=1))
    runs: dict[str, list[float]] = {"sequential": [], "concurrent": [], "concurrent, batches of 1": []}
    limits = httpx.Limits(max_connections=REQUESTS)
    with (
        running(batched) as url,
        running(unbatched) as url_unbatched,
        httpx.Client(timeout=300, limits=limits) as client,
        ThreadPoolExecutor(REQUESTS) as pool,
    ):
        sequential(client, url, images[:4])  # warm-up: first calls pay one-time costs
        concurrent(client, url, images, pool)
        concurrent(client, url_unbatched, images, pool)
        forwards = 0
        for _ in range(repeats):
            runs["sequential"].append(sequential(client, url, images))
            before = batched.state.batcher.batches
            runs["concurrent"].append(concurrent(client, url, images, pool))
            forwards += batched.state.batcher.batches - before
            runs["concurrent, batches of 1"].append(concurrent(client, url_unbatched, images, pool))
    best = {name: min(times) for name, times in runs.items()}
    print(
        f"{REQUESTS} requests, 256x256 scenes, {len(PROMPTS)} prompts, torch threads {args.threads}, best of {repeats}"
    )
    for name, times in runs.items():
        print(
            f"{name:<26} {best[name]:6.2f}s  ({REQUESTS / best[name]:5.1f} requests/s; runs: {_fmt(times)})"
        )
    print(f"batching gain: 16 concurrent vs 16 sequential {best['sequential'] / best['concurrent']:.2f}x, "
          f"vs concurrent in batches of 1 {best['concurrent, batches of 1'] / best['concurrent']:.2f}x "
          f"({REQUESTS * repeats / forwards:.1f} requests per forward on average)")  # fmt: skip


def _fmt(runs: list[float]) -> str:
    return ", ".join(f"{s:.2f}s" for s in runs)


if __name__ == "__main__":
    main()
