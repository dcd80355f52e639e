"""``POST /api/segment`` and ``GET /healthz`` on a real uvicorn server (shapes-tiny): results, batching,
upload limits, and no file outside the app through any route Gradio exposes (issue 18)."""

from __future__ import annotations

import base64
import http.client
import io
import re
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.routing import Mount

from clipseg.data.shapes.scenes import ShapesConfig, draw_sample
from clipseg.inference.postprocess import PostProcess
from clipseg.inference.writers import mask_to_gray
from clipseg.serve import BatchLimits, UploadLimits, create_app, running

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "clipseg" / "assets" / "example.png"
LIMITS = UploadLimits(max_bytes=300_000, max_pixels=1_000_000)
PROMPTS = [
    ["red square", "blue circle"],
    ["green triangle"],
    ["purple circle", "red square", "yellow square"],
]


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def scene(seed: int) -> np.ndarray:
    sample, _ = draw_sample(seed, 0, split="test", config=ShapesConfig(size=128 + 8 * (seed % 4)))
    return sample["image"]


@pytest.fixture(scope="module")
def server(predictor):
    # A wider window than the default: on a busy 2-core machine 16 threads take a while to all send.
    app = create_app(predictor, limits=LIMITS, batching=BatchLimits(window_s=0.1))
    with running(app) as url:
        yield url, app


def segment(url: str, image: bytes, prompts: list[str], threshold: float | None = None) -> httpx.Response:
    data = {"prompt": prompts} if threshold is None else {"prompt": prompts, "threshold": str(threshold)}
    return httpx.post(f"{url}/api/segment", files={"image": ("x.png", image)}, data=data, timeout=120)


def masks_of(response: httpx.Response) -> list[np.ndarray]:
    assert response.status_code == 200, response.text
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(m["png_base64"]))))
        for m in response.json()["masks"]
    ]


def test_healthz_names_the_model(server):
    url, _ = server
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "model": "shapes-tiny"}


@pytest.mark.parametrize("threshold", [None, 0.4])
def test_segment_answers_the_predictors_masks(server, predictor, threshold):
    url, _ = server
    image = scene(1)
    response = segment(url, png_bytes(image), ["red square", "blue circle"], threshold)
    body = response.json()
    assert (body["width"], body["height"], body["model"]) == (image.shape[1], image.shape[0], "shapes-tiny")
    want = predictor.predict(
        image, ["red square", "blue circle"], postprocess=PostProcess(threshold=threshold)
    )
    got = masks_of(response)
    assert [m["prompt"] for m in body["masks"]] == ["red square", "blue circle"]
    for mask, expected, entry in zip(got, want, body["masks"]):
        assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, mask_to_gray(expected))
        assert entry["area"] == pytest.approx(float((expected >= (threshold or 0.5)).mean()))
    if threshold is not None:
        assert set(np.unique(got[0])) <= {0, 255}


def test_each_mask_s_area_is_its_own_share_of_the_pixels(server):
    """A scene with both prompted objects, of different sizes: every area differs and is its mask's."""
    from fixture_data.known_scenes import Thing, draw_scene

    image, objects = draw_scene((Thing("red", "circle", 40, 40, 30), Thing("blue", "square", 96, 96, 16)))
    response = segment(server[0], png_bytes(image), ["red circle", "blue square"], 0.5)
    areas = [m["area"] for m in response.json()["masks"]]
    for area, mask, target in zip(areas, masks_of(response), objects):
        assert area == pytest.approx(float((mask == 255).mean()))
        assert area == pytest.approx(target.mean(), rel=0.3)  # the object's own size, roughly
    assert areas[0] > 2 * areas[1] > 0


def test_a_declared_length_over_the_limit_gets_413_before_the_body_is_sent(server):
    host, port = urllib.parse.urlsplit(server[0]).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:  # the headers alone: a server that waited for the body would time out here
        connection.putrequest("POST", "/api/segment")
        connection.putheader("Content-Type", "multipart/form-data; boundary=b")
        connection.putheader("Content-Length", str(10 * LIMITS.max_bytes))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and b"300,000 bytes" in response.read()
    finally:
        connection.close()


def test_16_concurrent_requests_equal_one_at_a_time_and_are_batched(server):
    url, app = server
    requests = [(png_bytes(scene(10 + i)), PROMPTS[i % 3]) for i in range(16)]
    alone = [masks_of(segment(url, image, prompts)) for image, prompts in requests]
    batcher = app.state.batcher
    before = batcher.batches
    start = threading.Barrier(16)

    def send(request):
        start.wait()
        return masks_of(segment(url, *request))

    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(send, requests))
    assert batcher.largest > 1 and batcher.batches - before < 16  # some requests shared a forward
    for one, many in zip(alone, together):
        assert len(one) == len(many)
        for a, b in zip(one, many):
            # Batched float math may round a soft mask differently by at most one gray level.
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_bad_request_in_a_batch_fails_alone(server, predictor):
    """A batch that fails is rerun job by job: the good requests still get their masks."""
    from clipseg.inference.inputs import Job

    batcher = server[1].state.batcher
    good = Job(image=scene(3), prompts=["red square"])
    black = np.zeros((32, 32), np.float32)
    bad = Job(image=scene(4), prompts=[(scene(5), black)])  # an all-black prompt mask is refused
    futures = [batcher.submit(good), batcher.submit(bad), batcher.submit(good)]
    assert futures[0].result(60).shape == futures[2].result(60).shape == (1, 128 + 8 * 3, 128 + 8 * 3)
    with pytest.raises(ValueError, match="all black"):
        futures[1].result(60)


@pytest.mark.parametrize(
    ("upload", "status", "message"),
    [
        (b"", 400, "empty"),
        (b"%PDF-1.4 not an image at all", 400, "not a readable image"),
        (png_bytes(scene(7))[:200], 400, "truncated"),
        (png_bytes(np.zeros((1000, 1001, 3), np.uint8)), 413, "pixels"),
        (png_bytes(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)), 413, "bytes"),
    ],
    ids=["empty", "non-image", "truncated", "too-many-pixels", "too-many-bytes"],
)
def test_bad_uploads_get_a_status_and_a_message(server, upload, status, message):
    response = segment(server[0], upload, ["red square"])
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_streamed_body_without_length_is_cut_at_the_limit(server):
    def chunks():  # a well-formed start of a file field, then more bytes than the limit
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 10_000

    response = httpx.post(
        f"{server[0]}/api/segment",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413 and "300,000 bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "at least one"),
        ({"prompt": ["a", " "]}, "non-empty"),
        ({"prompt": ["a"], "threshold": "1.5"}, "(0, 1)"),
        ({"prompt": ["a"], "min_area": "-3"}, "min_area: must be >= 0 pixels, got -3"),
        ({"prompt": ["a"], "min_area": "big"}, "min_area: input should be a valid integer"),
    ],
)
def test_bad_fields_get_400_with_a_message(server, data, message):
    response = httpx.post(
        f"{server[0]}/api/segment", files={"image": ("x.png", png_bytes(scene(2)))}, data=data
    )
    assert response.status_code == 400 and message in response.json()["detail"]


def test_gradio_uploads_obey_the_byte_limit(server):
    big = png_bytes(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    response = httpx.post(f"{server[0]}/gradio_api/upload", files={"files": ("big.png", big)})
    assert response.status_code == 413


def test_the_pages_endpoint_takes_an_image_prompt_with_its_painted_mask(server, tmp_path):
    """Through Gradio itself (its Python client): the support image with the red square painted on it
    finds the red square of the scene, as the text prompt finds the blue circle."""
    from gradio_client import Client, handle_file

    image = np.asarray(Image.open(EXAMPLE).convert("RGB"))  # a red square, a blue circle, ...
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    blue = (image[..., 2] > 150) & (image[..., 0] < 80) & (image[..., 1] < 80)
    layer = np.zeros((*red.shape, 4), np.uint8)
    layer[red] = 255
    (tmp_path / "scene.png").write_bytes(png_bytes(image))
    Image.fromarray(layer).save(tmp_path / "painted.png")
    scene_file = handle_file(str(tmp_path / "scene.png"))
    editor = {
        "background": scene_file,
        "layers": [handle_file(str(tmp_path / "painted.png"))],
        "composite": None,
    }
    options = [0.5, "", "none", 0, 0, False, 0, 0, "none", False]  # threshold, negatives, ..., tiles
    client = Client(f"{server[0]}/", verbose=False)
    try:
        _, gallery, files, summary, _ = client.predict(
            scene_file, "blue circle", editor, None, *options, api_name="/segment"
        )
    finally:
        client.close()  # its heartbeat stream would hold the server open at shutdown
    assert [g["caption"] for g in gallery] == ["blue circle", "image prompt"] and len(files) == 2
    masks = [np.asarray(Image.open(g["image"]).convert("L")) > 127 for g in gallery]
    assert (masks[0] & blue).sum() > 0.8 * blue.sum() and (masks[0] & red).sum() == 0
    assert (masks[1] & red).sum() > 0.8 * red.sum() and (masks[1] & blue).sum() == 0
    # The presence table names the image prompt too: one object found for each prompt.
    assert [(row[0], row[2]) for row in summary["data"]] == [("blue circle", 1), ("image prompt", 1)]


# ---- no file outside the app through any route -------------------------------------------------

TARGETS = ["/etc/passwd", "../../../../../../../../etc/passwd", "....//....//....//....//etc/passwd"]


def _variants(target: str) -> set[str]:
    """``target`` as typed, URL-encoded once and twice, and with encoded dots only."""
    once = urllib.parse.quote(target, safe="")
    return {target, once, urllib.parse.quote(once, safe=""), target.replace(".", "%2e")}


def get_routes(app) -> list[str]:
    """Every GET route of ``app`` and of the apps mounted in it (Gradio's), with its full path."""
    found: list[str] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(getattr(route.app, "routes", []), prefix + route.path)
                if not getattr(route.app, "routes", None):  # e.g. StaticFiles: files below the mount
                    found.append(prefix + route.path + "/{path}")
            elif hasattr(route, "original_router"):  # newer FastAPI keeps an included router whole
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "path"):  # an HTTP route (or a websocket one, which has no methods)
                if "GET" in (getattr(route, "methods", None) or ()):
                    found.append(prefix + route.path)
            else:  # a kind of route this walk does not know would hide its paths from the probe
                raise AssertionError(f"unknown route type {type(route).__name__}")

    walk(app.routes, "")
    return found


def file_routes(app) -> list[str]:
    """The GET routes that take a path or file name (a ``{param}`` in the path), as URL templates."""
    return sorted({r for r in get_routes(app) if "{" in r})


def probe_urls(app) -> list[str]:
    """Each file route with each of its parameters set to each form of each target (the others: ``x``)."""
    urls = []
    for route in file_routes(app):
        params = re.findall(r"\{[^}]*\}", route)
        for param in params:
            others = route
            for other in params:
                others = others.replace(other, "x") if other != param else others
            urls += [others.replace(param, v) for t in TARGETS for v in sorted(_variants(t))]
    return urls


def test_file_routes_of_the_app_include_gradios(server):
    routes = file_routes(server[1])
    assert any("file=" in r for r in routes), routes  # /gradio_api/file={path_or_url}
    assert any("static" in r for r in routes) and any("assets" in r for r in routes), routes


def test_no_route_serves_etc_passwd(server):
    """Every file route answers 4xx to every form of the path; only Gradio's event streams (no file
    in them, ever) answer 200, and nothing anywhere contains the file."""
    url, app = server
    secret = Path("/etc/passwd").read_text().splitlines()[0]
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    leaks, accepted = [], []
    urls = probe_urls(app)
    for path in urls:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path)  # sent as written: no client-side normalisation of ".." or "%2F"
        response = connection.getresponse()
        streaming = "event-stream" in (response.getheader("content-type") or "")  # SSE: no file, no end
        body = "" if streaming else response.read().decode("utf-8", "replace")
        connection.close()
        if secret in body or "root:" in body:
            leaks.append(path)
        if response.status < 400 and not streaming:
            accepted.append((path, response.status))
    assert leaks == [] and accepted == []
    assert len(urls) > 200  # every route, parameter and form was tried


def test_presence_instances_and_labels_in_the_answer(server, predictor):
    url, _ = server
    sample, _ = draw_sample(1, 0, split="test", config=ShapesConfig(size=136))
    image = sample["image"]
    objects = sample["meta"]["objects"]
    from clipseg.data.shapes.scenes import COLORS, SHAPES

    present = list(dict.fromkeys(f"{color} {shape}" for color, shape, *_ in objects))
    absent = next(f"{c} {s}" for c in COLORS for s in SHAPES if f"{c} {s}" not in present)
    prompts = [*present[:2], absent]
    data = {"prompt": prompts, "instances": "true", "labels": "true"}
    response = httpx.post(
        f"{url}/api/segment", files={"image": ("x.png", png_bytes(image))}, data=data, timeout=120
    )
    assert response.status_code == 200, response.text
    body = response.json()
    want = predictor.segment(image, prompts)
    for k, entry in enumerate(body["masks"]):
        assert entry["presence"] == pytest.approx(float(want.presence[k]), abs=1e-6)
        mine = [i for i in want.instances if i.prompt == k]
        assert [i["box"] for i in entry["instances"]] == [list(i.box) for i in mine]
        for got, inst in zip(entry["instances"], mine):
            mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(got["png_base64"])))) > 0
            np.testing.assert_array_equal(mask, inst.mask)
            assert got["area"] == inst.area
    assert any(m["instances"] for m in body["masks"]) and len(set(want.presence.round(3))) > 1
    labels = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["labels_png_base64"]))))
    assert labels.max() >= 2
    np.testing.assert_array_equal(labels, want.labels)
    plain = segment(url, png_bytes(image), prompts).json()
    assert "labels_png_base64" not in plain and all("instances" not in m for m in plain["masks"])


def test_every_path_reads_presence_the_same_way(server, predictor):
    """``presence.prompt_presence``: with negatives, ``segment()``, bulk masking and the page's table
    remove them at the run's cut (0.3 here, where 0.5 gives another presence); without, the API agrees too."""
    from dataclasses import replace

    from clipseg.data.shapes.scenes import make_scene
    from clipseg.inference.bulk import BulkMasker, MaskOptions
    from clipseg.serve.app import page_summary

    image, _ = make_scene(np.random.default_rng(3), 128, 1, required=("red", "circle"))
    prompts = ["red circle", "blue square"]
    post = PostProcess(threshold=0.3, negative=("circle",))  # its map overlaps the red circle's edge
    segmented = predictor.segment(image, prompts, postprocess=post).presence
    bulk = BulkMasker(predictor, prompts, MaskOptions(postprocess=post)).mask_images([image])[0].presences
    np.testing.assert_allclose(bulk, segmented, atol=1e-9)
    probs, pooled = predictor.predict_pooled(image, [*prompts, *post.negative])  # as the page's batcher
    rows, _ = page_summary(probs[:2], probs[2:], prompts, predictor.calibration, post, pooled=pooled[:2])
    assert [row[1] for row in rows] == [round(float(p), 3) for p in segmented]
    at_half = predictor.segment(image, prompts, postprocess=replace(post, threshold=None)).presence
    # The cut changes this image's presence (far more than the 1e-9 the paths are compared at).
    assert abs(at_half[0] - segmented[0]) > 1e-4
    union = replace(post, combine="union")  # one mask: its prompts' highest presence
    combined = BulkMasker(predictor, prompts, MaskOptions(postprocess=union)).mask_images([image])[0]
    assert combined.presences == pytest.approx([max(segmented)], abs=1e-9)
    assert predictor.segment(image, prompts, postprocess=union).presence.tolist() == combined.presences
    summary = page_summary(probs[:2], probs[2:], prompts, predictor.calibration, union, pooled=pooled[:2])
    assert summary[0] == rows  # per prompt
    plain = segment(server[0], png_bytes(image), prompts, 0.3).json()["masks"]
    alone = BulkMasker(predictor, prompts, MaskOptions(postprocess=PostProcess(threshold=0.3)))
    expected = alone.mask_images([image])[0].presences
    assert [m["presence"] for m in plain] == pytest.approx(expected, abs=1e-6)
    assert predictor.segment(image, prompts).presence == pytest.approx(expected, abs=1e-9)


def test_min_area_drops_small_instances_and_regions_as_the_page_does(server, predictor):
    from clipseg.data.shapes.drawing import plain_background, rasterize
    from clipseg.data.shapes.scenes import COLORS
    from clipseg.serve.app import page_summary

    image = plain_background(np.random.default_rng(0), 128)
    for (cx, cy), radius in (((35, 40), 16), ((95, 90), 8)):  # about 800 and 230 pixels
        image[rasterize("circle", cx, cy, radius, 0.0, 128)] = COLORS["red"]

    def ask(**more: str) -> dict:
        data = {"prompt": ["red circle"], "instances": "true", **more}
        files = {"image": ("x.png", png_bytes(image))}
        return httpx.post(f"{server[0]}/api/segment", files=files, data=data).json()["masks"][0]

    everything, large = ask(), ask(min_area="400")
    assert len(everything["instances"]) == 2 and everything == ask(min_area="0")  # 0: the default
    (kept,) = large["instances"]
    assert kept["box"] == max(everything["instances"], key=lambda i: i["area"])["box"]
    probs = predictor.predict(image, ["red circle"])
    post = PostProcess(min_area=400)
    rows, _ = page_summary(probs, probs[:0], ["red circle"], predictor.calibration, post)
    assert rows[0][2] == 1  # the page's instance count
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(large["png_base64"]))))
    page_mask = mask_to_gray(predictor.predict(image, ["red circle"], postprocess=post)[0])
    np.testing.assert_array_equal(mask, page_mask)  # the page's mask: the small circle dropped
    assert mask[90, 95] == 0 and mask[40, 35] == 255
