"""`clipseg predict` reports presence per prompt, and `--min-presence` empties absent prompts' masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clipseg.cli import main
from clipseg.data.shapes.scenes import COLORS, SHAPES, make_scene


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


def _two_circles(tmp_path):
    """A scene with two red circles and a blue square, saved as PNG."""
    from clipseg.data.shapes.drawing import plain_background, rasterize

    image = plain_background(np.random.default_rng(0), 128)
    for shape, (cx, cy), colour in (
        ("circle", (35, 40), "red"),
        ("circle", (90, 85), "red"),
        ("square", (90, 30), "blue"),
    ):
        image[rasterize(shape, cx, cy, 16, 0.0, 128)] = COLORS[colour]
    path = tmp_path / "two.png"
    Image.fromarray(image).save(path)
    return path


def test_instances_format_is_coco_with_one_annotation_per_object(tmp_path, capsys):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    path = _two_circles(tmp_path)
    out = tmp_path / "out"
    code = main(
        ["predict", str(path), "--prompt", "red circle", "--format", "instances", "--out", str(out), "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["coco"] == str(out / "instances.json")
    coco = COCO(str(out / "instances.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 2 and {a["category_id"] for a in anns} == {1}
    for ann in anns:
        mask = coco.annToMask(ann).astype(bool)
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        assert x <= xs.min() and xs.max() < x + w and y <= ys.min() and ys.max() < y + h
        assert ann["area"] == mask.sum() and 0.5 <= ann["score"] <= 1.0
    assert mask_utils.iou([anns[0]["segmentation"]], [anns[1]["segmentation"]], [0])[0][0] == 0


def test_labels_format_writes_an_indexed_map_and_its_legend(tmp_path):
    path = _two_circles(tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(path),
            "--prompt",
            "red circle",
            "--prompt",
            "blue square",
            "--format",
            "labels",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    image = Image.open(out / "two_labels.png")
    assert image.mode == "P"
    labels = np.asarray(image)
    assert json.loads((out / "labels.json").read_text()) == {
        "0": "background",
        "1": "red circle",
        "2": "blue square",
    }
    assert labels[40, 35] == 1 and labels[85, 90] == 1 and labels[30, 90] == 2 and labels[5, 5] == 0


def test_coco_and_instances_together_are_refused(tmp_path, capsys):
    path = _two_circles(tmp_path)
    code = main(
        ["predict", str(path), "--prompt", "x", "--format", "coco,instances", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "coco and instances" in err[0]


def _video(path, frames):
    """``frames`` (``H x W x 3`` uint8) as an MPEG-4 video at ``path``."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def test_a_video_gives_instances_and_a_label_map_per_frame(tmp_path):
    from pycocotools.coco import COCO

    frame = np.asarray(Image.open(_two_circles(tmp_path)).convert("RGB"))
    video = _video(tmp_path / "clip.mp4", [frame] * 3)
    out = tmp_path / "out"
    args = ["predict", str(video), "--prompt", "red circle", "--prompt", "blue square"]
    assert main([*args, "--format", "instances,labels", "--out", str(out)]) == 0
    coco = COCO(str(out / "instances.json"))
    images = coco.loadImgs(coco.getImgIds())
    assert [(i["file_name"], i["frame"]) for i in images] == [("clip.mp4", f) for f in range(3)]
    for image in images:  # each frame: the two red circles apart, the blue square once
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert sorted(a["category_id"] for a in anns) == [1, 1, 2]
        labels = np.asarray(Image.open(out / "clip.mp4" / f"{image['frame']:06d}_labels.png"))
        assert labels[40, 35] == labels[85, 90] == 1 and labels[30, 90] == 2 and labels[5, 5] == 0
    assert json.loads((out / "labels.json").read_text())["1"] == "red circle"


def test_a_video_reports_presence_per_frame_and_its_highest_in_the_summary(tmp_path, capsys):
    from clipseg.data.shapes.drawing import plain_background

    scene = np.asarray(Image.open(_two_circles(tmp_path)).convert("RGB"))
    empty = plain_background(np.random.default_rng(1), 128)  # no object at all
    video = _video(tmp_path / "clip.mp4", [empty, scene, empty])
    args = ["predict", str(video), "--prompt", "red circle", "--prompt", "blue square", "--format", "png"]
    assert main([*args, "--out", str(tmp_path / "j"), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["videos"]
    assert entry["frames"] == 3 and [m["prompt"] for m in entry["masks"]] == ["red circle", "blue square"]
    for m in entry["masks"]:  # in frame 1 only
        low, high, low_again = m["presence_by_frame"]
        assert high > 0.5 > max(low, low_again)
        assert m["presence"] == high and m["presence_mean"] == pytest.approx(
            (low + high + low_again) / 3, abs=1e-6
        )
    assert main([*args, "--out", str(tmp_path / "t")]) == 0
    lines = capsys.readouterr().out.splitlines()
    for m in entry["masks"]:
        line = f"{video}: {m['prompt']!r}: presence {m['presence']:.2f} (highest of 3 frames; "
        assert any(printed.startswith(line) for printed in lines)
