"""``clipseg serve`` and its API when something is wrong: one message each (issue 36, defects 12 and 13)."""

from __future__ import annotations

import io
import socket

import httpx
import numpy as np
import pytest
from PIL import Image

from clipseg.cli import main
from clipseg.serve import UploadLimits, create_app, running


def test_a_port_in_use_is_one_error_line_before_any_url(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no URL of a server that never ran
    assert err.startswith(f"clipseg serve: error: --port {port}: ") and "in use" in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def app(predictor):
    return create_app(predictor, limits=UploadLimits(max_bytes=100_000))


def test_building_the_app_prints_nothing(predictor, capfd):
    create_app(predictor)
    assert capfd.readouterr().out == ""  # Gradio 5.50 printed "new /"


@pytest.fixture(scope="module")
def url(app):
    with running(app) as base:
        yield base


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("files", "data", "status", "words"),
    [
        (True, {"prompt": ["a"], "threshold": "abc"}, 400, ["threshold:", "valid number"]),
        (False, {"prompt": ["a"]}, 400, ["image:", "required"]),
        (True, {"prompt": ["a"], "negative": "b", "tiles": "1"}, 400, ["unknown field", "negative, tiles"]),
        (True, {"prompt": ["a"], "threshold": "2"}, 400, ["threshold:", "(0, 1)"]),
        (True, {}, 400, ["prompt"]),
        (True, {"prompt": ["a"], "junk": "x" * 200_000}, 413, ["100,000 bytes"]),
    ],
)
def test_every_error_is_one_message_string(url, files, data, status, words):
    upload = {"image": ("x.png", png())} if files else None
    response = httpx.post(f"{url}/api/segment", files=upload, data=data, timeout=60)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str), body
    for word in words:
        assert word in body["detail"], body
