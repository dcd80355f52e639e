"""What `clipseg predict` writes and reports, checked against scenes with known objects (issue 36).

rgba cut-outs, several negatives, `--out` inside or above the inputs, options that change between
runs into one `--out`, two masks of one support image, long prompts, and the `done` count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixture_data.known_scenes import Thing, cutout, draw_scene, iou
from PIL import Image

from clipseg.cli import main
from clipseg.inference.stamps import STAMP_KEY

QUERY = (
    Thing("red", "circle", 34, 36, 22),
    Thing("blue", "square", 94, 40, 22),
    Thing("yellow", "triangle", 60, 98, 24),
)


@pytest.fixture()
def query(tmp_path) -> tuple[Path, list[np.ndarray]]:
    image, masks = draw_scene(QUERY)
    path = tmp_path / "query.png"
    Image.fromarray(image).save(path)
    return path, masks


def _run(capsys, *args: str | Path) -> dict:
    assert main(["predict", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _mask(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_rgba_is_the_image_with_the_mask_as_alpha(query, tmp_path, capsys):
    path, _ = query
    summary = _run(capsys, path, "--prompt", "red circle", "--format", "png,rgba", "--out", tmp_path / "o")
    (entry,) = summary["images"]
    cut = np.asarray(Image.open(tmp_path / "o" / "query_0_red-circle_rgba.png"))
    assert cut.shape[2] == 4
    np.testing.assert_array_equal(cut[..., :3], np.asarray(Image.open(path).convert("RGB")))
    np.testing.assert_array_equal(cut[..., 3], _mask(entry["masks"][0]["file"]))
    assert cut[..., 3].max() > 128  # the object is there to cut out


def test_every_negative_prompt_removes_its_own_region(query, tmp_path, capsys):
    path, masks = query
    prompts = [a for thing in QUERY for a in ("--prompt", thing.phrase)]
    negatives = ["--negative", "blue square", "--negative", "yellow triangle"]
    args = [path, *prompts, *negatives, "--threshold", "0.5", "--out", tmp_path / "o"]
    (entry,) = _run(capsys, *args)["images"]
    found = [_mask(m["file"]) >= 128 for m in entry["masks"]]
    assert iou(found[0], masks[0]) > 0.7  # the red circle, negated by neither, stays
    for index in (1, 2):  # each negated object is gone from its own prompt's mask
        assert (found[index] & masks[index]).sum() == 0, QUERY[index].phrase


def test_out_as_the_inputs_folder_masks_them_and_skips_only_our_outputs(query, tmp_path, capsys, monkeypatch):
    """Defect 9: `clipseg predict s1.png --out .` said "no such file"."""
    path, _ = query
    monkeypatch.chdir(tmp_path)
    summary = _run(capsys, path.name, "--prompt", "red circle", "--out", ".")
    assert summary["done"] == 1 and Path("query_0_red-circle.png").is_file()
    # The folder now holds our mask and overlay: as inputs of `predict . --out .` only query.png counts.
    summary = _run(capsys, ".", "--prompt", "red circle", "--out", ".")
    assert (summary["done"], summary["skipped"]) == (0, 1)
    summary = _run(capsys, path, "--prompt", "red circle", "--out", tmp_path.parent)  # --out = parent
    assert summary["done"] == 1


def test_changed_options_into_the_same_out_are_redone_not_skipped(query, tmp_path, capsys):
    """Defect 14: `--combine intersection` after `--combine union` kept the union under the same name."""
    path, masks = query
    args = [path, "--prompt", "red circle", "--prompt", "blue square", "--out", tmp_path / "o"]
    union = _run(capsys, *args, "--combine", "union")["images"][0]["masks"][0]
    union_mask = _mask(union["file"]) >= 128
    again = _run(capsys, *args, "--combine", "intersection")
    assert (again["done"], again["skipped"]) == (1, 0)
    inter = again["images"][0]["masks"][0]
    inter_mask = _mask(inter["file"]) >= 128
    assert iou(union_mask, masks[0] | masks[1]) > 0.7 and inter_mask.sum() < 0.1 * union_mask.sum()
    stamp = json.loads(Image.open(inter["file"]).info[STAMP_KEY])  # the file says what made it
    assert stamp["postprocess"]["combine"] == "intersection"
    assert _run(capsys, *args, "--combine", "intersection")["skipped"] == 1  # same options: resumed


def test_two_masks_of_one_support_image_get_distinct_labels(tmp_path, capsys):
    """Defect 15: `--prompt-image s1.png:maskA` and `s1.png:maskB` were both labelled "s1.png"."""
    image, masks = draw_scene(QUERY)
    Image.fromarray(image).save(tmp_path / "s1.png")
    for name, mask in (("maskA.png", masks[0]), ("maskB.png", masks[1])):
        Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / name)
    Image.fromarray(cutout("red", "circle")).save(tmp_path / "query.png")
    specs = [f"{tmp_path / 's1.png'}:{tmp_path / m}" for m in ("maskA.png", "maskB.png")]
    summary = _run(
        capsys,
        tmp_path / "query.png",
        *(a for s in specs for a in ("--prompt-image", s)),
        "--out",
        tmp_path / "o",
    )
    labels = [m["prompt"] for m in summary["images"][0]["masks"]]
    assert labels == ["s1.png:maskA.png", "s1.png:maskB.png"]
    assert len({m["file"] for m in summary["images"][0]["masks"]}) == 2


def test_a_very_long_prompt_is_shortened_in_the_printed_lines(query, tmp_path, capsys):
    """Defect 17: a 3000-word prompt was echoed whole."""
    path, _ = query
    prompt = " ".join(["red circle"] * 1500)
    assert main(["predict", str(path), "--prompt", prompt, "--out", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().out.splitlines()
    (line,) = [line for line in lines if "% of pixels" in line]
    assert len(line) < 330 and f"(+{len(prompt) - 60} chars)" in line
    assert main(["predict", str(path), "--prompt", prompt, "--out", str(tmp_path / "p"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["masks"][0]["prompt"] == prompt  # whole in JSON


@pytest.mark.parametrize("batch", ["1", "2", "3"])
def test_done_counts_every_input_whatever_the_last_batch_holds(query, tmp_path, capsys, batch):
    """With --batch-size 2 the last batch holds only the second input's end (its frame ran already)."""
    path, _ = query
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(path.read_bytes())
    summary = _run(capsys, folder, "--prompt", "red circle", "--batch-size", batch, "--out", tmp_path / "o")
    assert (summary["done"], summary["skipped"], len(summary["images"])) == (2, 0, 2)
