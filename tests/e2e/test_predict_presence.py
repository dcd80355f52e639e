"""`clipseg predict` reports presence per prompt, and `--min-presence` empties absent prompts' masks."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from clipseg.cli import main
from clipseg.data.shapes import COLORS, SHAPES, make_scene


def test_presence_in_json_and_min_presence_empties_the_absent_prompt(tmp_path, capsys):
    image, _ = make_scene(np.random.default_rng(3), 128, 1, required=("red", "circle"))
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)
    absent = next(f"{c} {s}" for c in COLORS for s in SHAPES if (c, s) != ("red", "circle"))
    args = ["predict", str(path), "--prompt", "red circle", "--prompt", absent, "--format", "png", "--json"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads(capsys.readouterr().out)["images"][0]["masks"]
    assert plain[0]["presence"] > 0.5 > plain[1]["presence"]
    assert main([*args, "--out", str(tmp_path / "gated"), "--min-presence", "0.5"]) == 0
    gated = json.loads(capsys.readouterr().out)["images"][0]["masks"]
    assert [m["presence"] for m in gated] == [m["presence"] for m in plain]
    assert not np.asarray(Image.open(gated[1]["file"])).any()  # judged absent: an empty mask
    kept = np.asarray(Image.open(gated[0]["file"]))
    assert kept.max() > 128 and np.array_equal(kept, np.asarray(Image.open(plain[0]["file"])))
    assert main([*args, "--out", str(tmp_path / "all"), "--min-presence", "1"]) == 0
    gone = json.loads(capsys.readouterr().out)["images"][0]["masks"]
    assert not np.asarray(Image.open(gone[0]["file"])).any()  # a present prompt under P is emptied too
