"""``clipseg predict --backend torch|onnx [--quantize int8]`` and the Ray engine's flags: the choice reaches
``load_model``, and flags that the chosen engine or backend would ignore end in one error line."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from PIL import Image

import clipseg
from clipseg.cli import main


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in" / "scene.png"
    path.parent.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def predict(image, out, *args: str) -> int:
    return main(
        ["predict", str(image), "--prompt", "a red circle", "--format", "npz", "--out", str(out), *args]
    )


def one_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clipseg predict: error: "), lines
    return lines[0]


def test_backend_onnx_masks_with_onnxruntime_and_torch_refuses_an_export(
    tiny_export, image, tmp_path, capsys
):
    assert predict(image, tmp_path / "out", "--model", str(tiny_export), "--backend", "onnx") == 0
    with np.load(tmp_path / "out" / "scene.npz") as saved:
        expected = clipseg.load_model(tiny_export, backend="onnx").predict(image, ["a red circle"])
        np.testing.assert_allclose(saved["masks"], expected, atol=1e-6)
    capsys.readouterr()
    assert predict(image, tmp_path / "torch", "--model", str(tiny_export), "--backend", "torch") == 1
    assert "is an ONNX export" in one_error(capsys)
    assert (
        predict(
            image, tmp_path / "int8", "--model", str(tiny_export), "--backend", "onnx", "--quantize", "int8"
        )
        == 1
    )
    assert "int8" in one_error(capsys)  # an fp32 export asked for int8: the flag reached load_model


def test_a_rerun_with_another_backend_redoes_the_inputs(image, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "cache"))  # shapes-tiny is exported here once
    runs = [[], ["--backend", "onnx"], ["--backend", "onnx"], ["--backend", "torch"]]
    lines = []
    for args in runs:
        assert predict(image, tmp_path / "out", "--model", "shapes-tiny", *args) == 0
        lines.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert [line.split(" (")[0] for line in lines] == [
        "done 1, skipped 0, failed 0",
        "done 1, skipped 0, failed 0",  # onnx masks differ from torch's: not taken as done
        "done 0, skipped 1, failed 0",
        "done 1, skipped 0, failed 0",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "--workers: only with --engine ray"),
        (
            ["--ray-address", "auto", "--gpus-per-worker", "1"],
            "--ray-address, --gpus-per-worker: only with --engine ray",
        ),
        (["--engine", "ray", "--workers", "0"], "--workers 0: at least 1 Ray actor"),
        (["--quantize", "int8"], "--quantize int8 runs on onnxruntime: add --backend onnx"),
    ],
)
def test_flags_the_engine_or_backend_would_ignore_are_refused(image, tmp_path, capsys, args, message):
    assert predict(image, tmp_path / "out", *args) == 1
    assert one_error(capsys).endswith(message)
    assert not (tmp_path / "out").exists()


def test_import_clipseg_ray_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` fails
    for name in [m for m in sys.modules if m == "clipseg.ray" or m.startswith("clipseg.ray.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ModuleNotFoundError) as failure:
        importlib.import_module("clipseg.ray")
    assert str(failure.value) == "clipseg.ray needs ray, which is not installed: pip install 'clipseg[ray]'"


def test_segmenter_runs_an_onnx_export_folder_on_paths_without_a_cluster(tiny_export, tmp_path):
    pytest.importorskip("ray")
    from pycocotools import mask as mask_utils

    from clipseg.data.shapes.scenes import ShapesConfig, draw_sample
    from clipseg.ray import Segmenter

    sample = draw_sample(0, 0, split="test", config=ShapesConfig(size=64))[0]
    image, prompt = tmp_path / "scene.png", sample["text"]  # an object of the scene: a mask with pixels
    Image.fromarray(sample["image"]).save(image)
    table = Segmenter(str(tiny_export), [prompt])({"path": np.array([str(image)])})
    (row,) = table.to_pylist()
    (mask,) = row["masks"]
    rle = {"size": mask["rle"]["size"], "counts": mask["rle"]["counts"].encode()}
    probs = clipseg.load_model(tiny_export).predict(image, [prompt])[0]
    sure = np.abs(probs - 0.5) > 1e-5  # no threshold given: the RLE is the mask at 0.5
    decoded = mask_utils.decode(rle).astype(bool)
    np.testing.assert_array_equal(decoded[sure], (probs >= 0.5)[sure])
    assert 0 < decoded.sum() < decoded.size and mask["score"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert row["path"] == str(image) and row["error"] is None and mask["prompt"] == prompt
