"""The locust user of ``bench/serve_load.py``: ``POST /api/segment`` with the bundled example image and
two text prompts, back to back (no think time), as fast as the server answers."""

from __future__ import annotations

from pathlib import Path

from locust import HttpUser, task

IMAGE = (Path(__file__).resolve().parent.parent / "src/clipseg/assets/example.png").read_bytes()


class Segmenter(HttpUser):
    @task
    def segment(self) -> None:
        self.client.post(
            "/api/segment",
            files={"image": ("example.png", IMAGE, "image/png")},
            data={"prompt": ["red square", "blue circle"]},
            name="/api/segment",
        )
