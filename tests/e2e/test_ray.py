"""``clipseg predict --engine ray`` and ``clipseg.ray.Segmenter`` on a local Ray cluster (one per module).

The Ray engine must give the local engine's files byte for byte (it runs the same ``BulkMasker.outcomes``
in its actors), survive a killed actor, and ``Segmenter`` rows must decode to ``predict >= threshold``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from clipseg.cli import main  # noqa: E402
from clipseg.data.shapes.scenes import ShapesConfig, draw_sample  # noqa: E402
from clipseg.inference.bulk import MaskOptions  # noqa: E402
from clipseg.inference.postprocess import PostProcess  # noqa: E402
from clipseg.inference.runs import BulkRun  # noqa: E402
from clipseg.ray import RayEngine, Segmenter  # noqa: E402
from clipseg.zoo import load_model  # noqa: E402


def sample(seed: int, size: int = 64) -> dict:
    return draw_sample(seed, 0, split="test", config=ShapesConfig(size=size))[0]


PROMPTS = [sample(0)["text"], sample(1)["text"]]  # objects of the first two scenes: masks with pixels
# A nested tree with same-named files: x.png in three folders, and y.png beside y.jpg.
NAMES = ["a/x.png", "b/x.png", "a/sub/x.png", "a/y.png", "a/y.jpg", "c.png"]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, address="local", logging_level="warning")
    yield
    ray.shutdown()


def save_scenes(folder: Path, names: list[str], size: int = 64) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw_sample(i, 0, split="test", config=ShapesConfig(size=size))[0]["image"]).save(
            path
        )
        paths.append(path)
    return paths


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def predict(*args: str | Path) -> int:
    return main(["predict", *map(str, args), *(a for p in PROMPTS for a in ("--prompt", p))])


@pytest.mark.parametrize("formats", ["png,coco,overlay", "labels,instances,npz,rgba"])
def test_ray_engine_writes_the_local_engines_files_byte_for_byte(cluster, tmp_path, capsys, formats):
    save_scenes(tmp_path / "in", NAMES)
    bad = tmp_path / "in" / "a" / "bad.png"
    bad.write_bytes(b"not an image")
    common = ("--format", formats, "--threshold", "0.4")
    assert predict(tmp_path / "in", "--out", tmp_path / "local", *common) == 1
    local = capsys.readouterr()
    assert (
        predict(tmp_path / "in", "--out", tmp_path / "ray", *common, "--engine", "ray", "--workers", "2") == 1
    )
    remote = capsys.readouterr()
    written = files_of(tmp_path / "ray")
    assert written == files_of(tmp_path / "local")
    assert len([name for name in written if name.endswith(".png")]) >= len(NAMES)
    assert any(np.asarray(Image.open(tmp_path / "ray" / name)).any() for name in written if "_0_" in name)
    error = f"clipseg predict: error: {bad}: not a readable image"
    for captured in (local, remote):  # the bad file is named, counted, and the others are done
        assert error in captured.err and "done 6, skipped 0, failed 1" in captured.out
    assert predict(tmp_path / "in", "--out", tmp_path / "ray", *common, "--engine", "ray") == 1
    assert "done 0, skipped 6, failed 1" in capsys.readouterr().out  # resume-skip: the driver's plan


def test_segmenter_rows_decode_to_predict_at_the_threshold(cluster, tmp_path):
    from pycocotools import mask as mask_utils

    paths = save_scenes(tmp_path / "in", [f"s{i}.png" for i in range(4)])
    (tmp_path / "bad.png").write_bytes(b"junk")
    threshold = 0.3
    predictor = load_model("shapes-tiny", device="cpu")
    args = {
        "fn_constructor_args": ("shapes-tiny", PROMPTS),
        "fn_constructor_kwargs": {"threshold": threshold, "device": "cpu"},
        "batch_size": 3,
        "compute": ray.data.ActorPoolStrategy(size=1),
    }
    read = ray.data.read_images(str(tmp_path / "in"), include_paths=True, mode="RGB")
    by_path = ray.data.from_items([{"path": str(p)} for p in [*paths, tmp_path / "bad.png"]])
    rows = read.map_batches(Segmenter, **args).take_all()
    path_rows = by_path.map_batches(Segmenter, **args).take_all()
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in paths)
    assert {r["path"]: r["masks"] for r in path_rows if r["error"] is None} == {
        r["path"]: r["masks"] for r in rows
    }
    (failed,) = [r for r in path_rows if r["error"] is not None]
    assert (
        failed["path"] == str(tmp_path / "bad.png") and "bad.png" in failed["error"] and failed["masks"] == []
    )
    marked = 0
    for row in rows:
        probs = predictor.predict(row["path"], PROMPTS)
        assert [m["prompt"] for m in row["masks"]] == PROMPTS and "image" not in row
        for mask, prob in zip(row["masks"], probs):
            rle = {"size": mask["rle"]["size"], "counts": mask["rle"]["counts"].encode()}
            decoded = mask_utils.decode(rle).astype(bool)
            # Pixels within 1e-5 of the threshold may fall either way (batched vs single forward).
            sure = np.abs(prob - threshold) > 1e-5
            np.testing.assert_array_equal(decoded[sure], (prob >= threshold)[sure])
            assert mask["score"] == pytest.approx(float(prob.max()), abs=1e-5)
            assert mask["area"] == pytest.approx(decoded.mean())
            marked += int(decoded.sum())
    assert marked > 0  # the scenes do have pixels above the threshold


def _actors() -> list[psutil.Process]:
    """This test's Ray Data actors (descendants of this process: the local cluster's workers)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "MapWorker" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_killed_actor_mid_run_still_ends_with_every_output(cluster, tmp_path):
    names = [f"img{i:03d}.png" for i in range(48)]
    save_scenes(tmp_path / "in", names, size=128)
    options = MaskOptions(postprocess=PostProcess(threshold=0.5), batch_size=2)
    engine = RayEngine(partial(load_model, "shapes-tiny", device="cpu"), PROMPTS, options, workers=1)
    plan = BulkRun.plan(
        "shapes-tiny", PROMPTS, options, tmp_path / "in", out=tmp_path / "ray", formats=("png", "coco")
    )
    summary = {}
    worker = threading.Thread(target=lambda: summary.update(ray=plan.run(engine.outcomes)))
    worker.start()
    deadline = time.monotonic() + 240
    while not list((tmp_path / "ray").glob("img*.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    victims = _actors()
    for victim in victims:
        os.kill(victim.pid, signal.SIGKILL)
    killed_at = len(list((tmp_path / "ray").glob("img*_0_*.png")))
    worker.join(timeout=240)
    assert victims and 0 < killed_at < len(names), "the kill must land mid-run"
    result = summary["ray"]
    assert (result.done, result.skipped, result.failed) == (len(names), 0, [])
    assert [e["image"] for e in result.entries] == [str(tmp_path / "in" / n) for n in names]
    from clipseg.inference.bulk import BulkMasker

    BulkMasker(load_model("shapes-tiny", device="cpu"), PROMPTS, options).predict_folder(
        tmp_path / "in", out=tmp_path / "local", formats=("png", "coco")
    )
    assert files_of(tmp_path / "ray") == files_of(tmp_path / "local")  # complete, no partial files left
