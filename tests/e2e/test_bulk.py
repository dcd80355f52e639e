"""Bulk masking end to end with the shipped shapes-tiny: folders, resumption, COCO, videos, the Python API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clipseg.cli import main
from clipseg.data.shapes.scenes import ShapesConfig, draw_sample
from clipseg.inference.bulk import BulkMasker, MaskOptions
from clipseg.inference.postprocess import PostProcess

PROMPTS = ["red square", "blue circle"]


def scene(seed: int, size: int = 64) -> np.ndarray:
    return draw_sample(seed, 0, split="test", config=ShapesConfig(size=size))[0]["image"]


def present(seed: int) -> str:
    """A prompt (color + shape) for an object in ``scene(seed)``."""
    return draw_sample(seed, 0, split="test", config=ShapesConfig(size=64))[0]["text"]


def save_scenes(folder: Path, names: list[str], first_seed: int = 0) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene(first_seed + i)).save(path)
        paths.append(path)
    return paths


def predict_cli(*args: str | Path) -> int:
    prompts = [a for p in PROMPTS for a in ("--prompt", p)]
    return main(["predict", *map(str, args), *prompts])


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_stem_in_different_folders_each_get_their_own_masks(tmp_path, predictor):
    a, b = save_scenes(tmp_path / "in", ["a/x.png", "b/x.png"], first_seed=10)
    assert predict_cli(tmp_path / "in", "--out", tmp_path / "out") == 0
    for image in (a, b):
        written = np.asarray(Image.open(tmp_path / "out" / image.parent.name / "x_0_red-square.png"))
        expected = (predictor.predict(image, PROMPTS)[0] * 255).round()
        np.testing.assert_allclose(written, expected, atol=1)
    assert not np.array_equal(*(np.asarray(Image.open(tmp_path / f"out/{d}/x_overlay.png")) for d in "ab"))


def test_bad_file_is_reported_and_the_run_goes_on(tmp_path, capsys):
    save_scenes(tmp_path / "in", ["good.png"])
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    assert predict_cli(tmp_path / "in", "--out", tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"clipseg predict: error: {tmp_path / 'in' / 'bad.png'}: not a readable image "
        f"(cannot identify image file '{tmp_path / 'in' / 'bad.png'}')"
    ]
    assert "done 1, skipped 0, failed 1" in captured.out
    assert (tmp_path / "out" / "good_0_red-square.png").exists()
    assert not list((tmp_path / "out").glob("bad*"))


def test_rerun_skips_complete_inputs_and_overwrite_redoes_them(tmp_path, capsys):
    save_scenes(tmp_path / "in", ["one.png", "two.png"])
    assert predict_cli(tmp_path / "in", "--out", tmp_path / "out") == 0
    (tmp_path / "out" / "two_overlay.png").unlink()  # incomplete outputs: done again
    capsys.readouterr()
    assert predict_cli(tmp_path / "in", "--out", tmp_path / "out") == 0
    assert "done 1, skipped 1, failed 0" in capsys.readouterr().out
    assert predict_cli(tmp_path / "in", "--out", tmp_path / "out", "--overwrite") == 0
    assert "done 2, skipped 0, failed 0" in capsys.readouterr().out


def test_kill_9_mid_folder_then_rerun_equals_an_uninterrupted_run(tmp_path):
    names = [f"{d}/img{i:02d}.png" for d in ("p", "q") for i in range(20)]
    save_scenes(tmp_path / "in", names)
    options = ["--format", "png,rgba,npz,coco,overlay", "--threshold", "0.5", "--batch-size", "1"]
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    prompts = [a for p in PROMPTS for a in ("--prompt", p)]
    cmd = [sys.executable, "-m", "clipseg.cli", "predict", str(tmp_path / "in"), *prompts, *options]
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not list(killed.glob("q/*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the second folder has started: the run is in the middle
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / "coco.json").exists(), "the run finished before it could be killed"

    assert main(["predict", str(tmp_path / "in"), *prompts, *options, "--out", str(killed)]) == 0
    assert main(["predict", str(tmp_path / "in"), *prompts, *options, "--out", str(reference)]) == 0
    assert files_of(killed) == files_of(reference)


def test_coco_masks_read_back_by_pycocotools_equal_the_png_masks(tmp_path):
    from pycocotools.coco import COCO

    save_scenes(tmp_path / "in", ["s0.png", "sub/s1.png", "sub/s2.png"], first_seed=3)
    prompts = [present(3), present(4)]
    out = tmp_path / "out"
    args = ["--format", "png,coco", "--threshold", "0.5", *(a for p in prompts for a in ("--prompt", p))]
    assert main(["predict", str(tmp_path / "in"), "--out", str(out), *args]) == 0
    coco = COCO(str(out / "coco.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == prompts
    assert len(coco.getImgIds()) == 3
    marked = 0
    slugs = {c["name"]: "-".join(c["name"].split()) for c in coco.loadCats(coco.getCatIds())}
    for image in coco.loadImgs(coco.getImgIds()):
        key = Path(image["file_name"]).with_suffix("")
        for category in coco.loadCats(coco.getCatIds()):
            png = np.asarray(Image.open(out / f"{key}_{category['id'] - 1}_{slugs[category['name']]}.png"))
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"], catIds=category["id"]))
            decoded = coco.annToMask(anns[0]) if anns else np.zeros_like(png)
            np.testing.assert_array_equal(decoded * 255, png)
            marked += int(decoded.sum())
    assert marked > 0  # the scenes hold these shapes: some pixels are masked


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def test_video_gives_one_mask_per_frame(tmp_path, predictor, capsys):
    video = tmp_path / "clip.mp4"
    write_video(video, [scene(5 + i % 2) for i in range(6)])
    out = tmp_path / "out"
    assert predict_cli(video, "--out", out, "--video-output", "both", "--smooth", "--threshold", "0.5") == 0
    folder = out / "clip.mp4"
    assert sorted(p.name for p in folder.glob("*_0_red-square.png")) == [
        f"{i:06d}_0_red-square.png" for i in range(6)
    ]
    with av.open(str(folder / "0_red-square.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6
    capsys.readouterr()
    assert predict_cli(video, "--out", out, "--video-output", "both", "--smooth", "--threshold", "0.5") == 0
    assert "done 0, skipped 1" in capsys.readouterr().out
    assert predict_cli(video, "--out", out, "--video-output", "both", "--format", "npz") == 0  # new format
    assert "done 1, skipped 0" in capsys.readouterr().out and (folder / "000005.npz").exists()
    streamed = list(BulkMasker(predictor, PROMPTS).iter_predict([video]))
    assert [(s.path, s.frame) for s, _ in streamed] == [(video, i) for i in range(6)]
    assert all(masks.shape == (2, 64, 64) for _, masks in streamed)


def test_python_api_streams_and_post_processes(tmp_path, predictor, capsys):
    paths = save_scenes(tmp_path / "in", ["a.png", "b.png", "c.png"])
    streamed = list(BulkMasker(predictor, PROMPTS, MaskOptions(batch_size=2)).iter_predict(tmp_path / "in"))
    assert [s.path for s, _ in streamed] == paths
    for (_, masks), path in zip(streamed, paths):
        np.testing.assert_allclose(masks, predictor.predict(path, PROMPTS), atol=1e-5)
    # a negative equal to the positive removes everything the positive marks
    text = present(0)
    plain = predictor.predict(paths[0], [text], postprocess=PostProcess(threshold=0.5))
    negated = predictor.predict(paths[0], [text], postprocess=PostProcess(threshold=0.5, negative=(text,)))
    assert plain.sum() > 0 and negated.sum() == 0
    summary = BulkMasker(predictor, PROMPTS).predict_folder(
        tmp_path / "in", out=tmp_path / "out", formats=["npz"], progress=True
    )
    assert (summary.done, summary.skipped, summary.failed) == (3, 0, [])
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "3/3" in bar and "input/s" in bar  # count, rate (and ETA while running)
    with np.load(tmp_path / "out" / "a.npz") as saved:
        np.testing.assert_allclose(saved["masks"], streamed[0][1], atol=1e-6)
        assert list(saved["labels"]) == PROMPTS


def test_bad_stream_input_raises_unless_on_error(tmp_path, predictor):
    from clipseg.core.images import ImageError

    save_scenes(tmp_path / "in", ["a.png"])
    (tmp_path / "in" / "b.png").write_bytes(b"junk")
    with pytest.raises(ImageError, match=r"b\.png"):
        list(BulkMasker(predictor, PROMPTS).iter_predict(tmp_path / "in"))
    seen = []
    results = list(
        BulkMasker(predictor, PROMPTS).iter_predict(tmp_path / "in", on_error=lambda p, m: seen.append(p))
    )
    assert len(results) == 1 and seen == [tmp_path / "in" / "b.png"]
