"""`clipseg predict` end to end with the shipped model, and its handling of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipseg.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "clipseg" / "assets" / "example.png"


def test_predict_writes_masks_overlay_and_json(scene, tmp_path, capsys):
    path, sample = scene
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(path),
            "--prompt",
            sample["text"],
            "--prompt",
            "green object",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    masks = summary["images"][0]["masks"]
    assert [m["prompt"] for m in masks] == [sample["text"], "green object"]
    first = np.asarray(Image.open(masks[0]["file"]))
    assert first.shape == sample["image"].shape[:2]  # at the input's own resolution
    assert first.dtype == np.uint8 and 0.0 <= masks[0]["area"] <= 1.0
    overlay = Image.open(summary["images"][0]["overlay"])
    assert overlay.width == 128 and overlay.height > 128  # legend below the image


def test_threshold_gives_binary_masks(scene, tmp_path, capsys):
    path, sample = scene
    code = main(
        [
            "predict",
            str(path),
            "--prompt",
            sample["text"],
            "--out",
            str(tmp_path / "o"),
            "--threshold",
            "0.5",
            "--json",
        ]
    )
    assert code == 0
    mask = np.asarray(Image.open(json.loads(capsys.readouterr().out)["images"][0]["masks"][0]["file"]))
    assert set(np.unique(mask)) <= {0, 255}


def test_visual_prompt_from_cli(scene, tmp_path, capsys):
    path, sample = scene
    support = tmp_path / "support.png"
    Image.fromarray(sample["image"]).save(support)
    support_mask = tmp_path / "support_mask.png"
    Image.fromarray((sample["mask"] * 255).astype(np.uint8)).save(support_mask)
    code = main(
        [
            "predict",
            str(path),
            "--prompt-image",
            f"{support}:{support_mask}",
            "--out",
            str(tmp_path / "o"),
            "--json",
        ]
    )
    assert code == 0
    assert "support.png" in json.loads(capsys.readouterr().out)["images"][0]["masks"][0]["prompt"]


def _file(name: str, data: bytes):
    def make(folder):
        (folder / name).write_bytes(data)
        return folder / name

    return make


@pytest.mark.parametrize(
    ("make_input", "extra", "message"),
    [
        (lambda d: d / "missing.png", ["--prompt", "red circle"], "no such file"),
        (_file("empty.png", b""), ["--prompt", "red circle"], "empty"),
        (_file("bad.png", b"not a png at all"), ["--prompt", "x"], "not a readable image"),
        (lambda d: EXAMPLE, ["--prompt", "  "], "empty prompt"),
        (lambda d: EXAMPLE, [], "no prompt given"),
        (lambda d: EXAMPLE, ["--prompt", "red circle", "--model", "no-such-model"], "unknown model"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, capsys, make_input, extra, message):
    image = make_input(tmp_path)
    out = tmp_path / "out"
    code = main(["predict", str(image), *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())


def test_huge_image_is_refused_naming_the_limit_and_how_to_raise_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(100 * 100))
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 200)).save(big)
    code = main(["predict", str(big), "--prompt", "red circle", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "200x200 is larger than the limit of 10,000 pixels" in err
    assert "CLIPSEG_MAX_PIXELS=" in err  # the setting that raises it
    monkeypatch.setenv("CLIPSEG_MAX_PIXELS", str(200 * 200))
    assert main(["predict", str(big), "--prompt", "red circle", "--out", str(tmp_path / "o")]) == 0


def test_pil_s_own_lower_limit_does_not_refuse_an_image_within_ours(tmp_path, monkeypatch):
    """A 10000 x 10000 PNG (100 M pixels, below our 120 M) was refused by PIL's 89 M without a word of why:
    the commands raise PIL's process-wide limit to ours at start (the library leaves it as the program
    set it: tests/unit/test_image_guard.py)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50 * 50)  # PIL refuses above twice this; restored after
    path = tmp_path / "wide.png"
    Image.new("RGB", (200, 100), (9, 8, 7)).save(path)
    assert main(["predict", str(path), "--prompt", "red circle", "--out", str(tmp_path / "o")]) == 0
