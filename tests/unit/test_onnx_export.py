"""``clipseg export onnx`` and the onnxruntime backend: same probabilities as torch, no torch needed (issue 19)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import tomllib

import clipseg
from clipseg.backends.onnx import OnnxBackend
from clipseg.core.prompts import Prompt
from clipseg.data.shapes.scenes import COLORS, SHAPES, ShapesConfig, draw_sample
from clipseg.export.onnx import check_graphs, export_onnx
from clipseg.zoo import load_weights

TOL = 1e-4
PHRASES = [f"{color} {shape}" for color, shape in itertools.product(COLORS, SHAPES)][:8]


@pytest.fixture(scope="module")
def torch_predictor():
    return clipseg.load_model("shapes-tiny", device="cpu")


def scene(index: int = 0) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A non-square ``128 x 100`` shapes scene and a support image with its mask from another scene."""
    sample, support = draw_sample(7, index, split="test", config=ShapesConfig(size=128, visual_prob=1.0))
    assert support is not None
    return np.ascontiguousarray(np.asarray(sample["image"])[:, :100]), support


def prompts_of(kind: str, count: int) -> list:
    if kind == "text":
        return PHRASES[:count]
    return [Prompt(image=support[0], mask=support[1]) for _, support in map(scene, range(1, count + 1))]


@pytest.mark.parametrize("count", [1, 8])
@pytest.mark.parametrize("kind", ["text", "visual"])
def test_onnx_probabilities_match_torch(tiny_export, torch_predictor, kind, count):
    image, _ = scene()
    prompts = prompts_of(kind, count)
    want = torch_predictor.predict(image, prompts)
    got = clipseg.load_model(tiny_export).predict(image, prompts)
    assert got.shape == want.shape == (count, 128, 100)
    assert np.abs(got - want).max() <= TOL


def test_every_graph_follows_torch_on_other_batch_prompt_token_and_image_sizes(tiny_export):
    model, _ = load_weights("shapes-tiny")
    # check_graphs feeds sizes other than the traced ones: 1 and 3 images of 5 x 2 and 2 x 3 patches.
    diffs = check_graphs(model, OnnxBackend(tiny_export))
    assert set(diffs) == {"vision", "text", "visual", "decoder"}
    assert max(diffs.values()) <= TOL


BLOCKED = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
import numpy as np
import clipseg
from clipseg.core.prompts import Prompt
image, support, support_mask = (np.load(sys.argv[i]) for i in (2, 3, 4))
predictor = clipseg.load_model(sys.argv[1])
probs = predictor.predict(image, ["red circle", "blue square", Prompt(image=support, mask=support_mask)])
np.save(sys.argv[5], probs)
print(type(predictor.backend).__name__, sorted(m for m in ("torch", "lightning") if sys.modules.get(m)))
"""


def test_onnx_predictor_runs_where_torch_cannot_be_imported(tiny_export, torch_predictor, tmp_path):
    image, (support, support_mask) = scene()
    files = [tmp_path / f"{name}.npy" for name in ("image", "support", "mask")]
    for file, array in zip(files, (image, support, support_mask)):
        np.save(file, array)
    out = tmp_path / "probs.npy"
    command = [sys.executable, "-c", BLOCKED, str(tiny_export), *map(str, files), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["OnnxBackend", "[]"]
    want = torch_predictor.predict(
        image, ["red circle", "blue square", Prompt(image=support, mask=support_mask)]
    )
    assert np.abs(np.load(out) - want).max() <= TOL


def _linear_layers(path: Path) -> dict[str, int]:
    """Float linear layers (Gemm, or MatMul by a constant) and int8 ones (MatMulInteger) of a graph."""
    graph = onnx.load(str(path)).graph
    constants = {init.name for init in graph.initializer}
    constants |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
    constants |= {n.output[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in constants}
    counts = {"float": 0, "int8": 0}
    for node in graph.node:
        if node.op_type == "Gemm" or (node.op_type == "MatMul" and node.input[1] in constants):
            counts["float"] += 1
        elif node.op_type == "MatMulInteger":
            counts["int8"] += 1
    return counts


def test_int8_quantizes_every_linear_layer_and_stays_close(tiny_export, tmp_path):
    model, tokenizer = load_weights("shapes-tiny")
    out = tmp_path / "int8"
    export_onnx(model, tokenizer, out, quantize="int8")
    assert json.loads((out / "config.json").read_text())["quantize"] == "int8"
    for name in ("vision", "text", "visual", "decoder"):
        before, after = _linear_layers(tiny_export / f"{name}.onnx"), _linear_layers(out / f"{name}.onnx")
        # Every linear layer of the fp32 graph is an int8 one after quantization; none stays float.
        assert before["float"] > 0 and after == {"float": 0, "int8": before["float"]}, (name, before, after)
        assert (out / f"{name}.onnx").stat().st_size < (tiny_export / f"{name}.onnx").stat().st_size
    image, _ = scene()
    fp32 = clipseg.load_model(tiny_export).predict(image, PHRASES)
    int8 = clipseg.load_model(out).predict(image, PHRASES)
    assert 0 < np.abs(int8 - fp32).mean() < 0.01  # quantized (not identical), yet the same masks mostly


def test_export_writes_nothing_when_the_check_fails(tmp_path, monkeypatch):
    import clipseg.export.onnx as export_module

    def fail(*args, **kwargs):
        raise RuntimeError("graphs differ")

    monkeypatch.setattr(export_module, "check_graphs", fail)
    model, tokenizer = load_weights("shapes-tiny")
    with pytest.raises(RuntimeError, match="graphs differ"):
        export_onnx(model, tokenizer, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_and_refuses_a_non_empty_folder(tmp_path, capsys):
    from clipseg.cli import main

    out = tmp_path / "export"
    assert main(["export", "onnx", "--model", "shapes-tiny", "--out", str(out)]) == 0
    assert "fp32 graphs vs torch" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "decoder.onnx",
        "text.onnx",
        "tokenizer",
        "vision.onnx",
        "visual.onnx",
    ]
    assert main(["export", "onnx", "--model", "shapes-tiny", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clipseg export: error: --out") and "--overwrite" in err[0]
    (out / "vision.onnx").write_bytes(b"stale")  # an earlier export is replaced whole
    assert main(["export", "onnx", "--model", "shapes-tiny", "--out", str(out), "--overwrite"]) == 0
    assert (out / "vision.onnx").stat().st_size > 100 and "fp32 graphs" in capsys.readouterr().out
    assert main(["export", "onnx", "--model", "no-such-model", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'no-such-model'" in err[0]
    assert not (tmp_path / "x").exists()


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clipseg export: error: --out"), err
    return err[0]


def test_overwrite_never_deletes_what_an_export_did_not_write(tmp_path, capsys):
    """Issue 36 defects 1 and 11: ``--overwrite`` wiped any folder; a file gave ``[Errno 20]``."""
    from clipseg.cli import main

    def export(out: Path) -> int:
        return main(["export", "onnx", "--model", "shapes-tiny", "--out", str(out), "--overwrite"])

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"jpeg")
    (photos / "notes.txt").write_text("keep me")
    assert export(photos) == 1 and "not an earlier ONNX export" in _one_error(capsys)
    assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg", "notes.txt"]
    # A foreign config.json (another tool's) does not make the folder ours.
    (photos / "config.json").write_text('{"model_type": "bert"}')
    assert export(photos) == 1 and "not an earlier ONNX export" in _one_error(capsys)
    # An earlier export with the user's own file added: the file is named and kept.
    export_like = tmp_path / "export"
    export_like.mkdir()
    (export_like / "config.json").write_text(json.dumps({"format": "clipseg-onnx", "version": 1}))
    (export_like / "vision.onnx").write_bytes(b"graph")
    (export_like / "README.md").write_text("mine")
    assert export(export_like) == 1 and "did not write (README.md)" in _one_error(capsys)
    assert (export_like / "README.md").read_text() == "mine" and (export_like / "vision.onnx").exists()
    single = tmp_path / "model.onnx"
    single.write_bytes(b"a file")
    assert export(single) == 1 and "is a file" in _one_error(capsys)
    assert single.read_bytes() == b"a file"


def test_load_model_by_name_exports_once_into_the_cache(tmp_path, monkeypatch, torch_predictor):
    from clipseg.core.files import sha256_of
    from clipseg.zoo import get_card
    from clipseg.zoo.store import fetch

    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path))
    predictor = clipseg.load_model("shapes-tiny", backend="onnx")
    folder = tmp_path / "onnx" / sha256_of(fetch(get_card("shapes-tiny")))
    assert isinstance(predictor.backend, OnnxBackend) and predictor.backend.folder == folder
    image, _ = scene()
    assert (
        np.abs(predictor.predict(image, PHRASES[:2]) - torch_predictor.predict(image, PHRASES[:2])).max()
        <= TOL
    )
    # The shipped file's presence calibration travels with the export (config.json).
    assert torch_predictor.calibration is not None and predictor.calibration == torch_predictor.calibration

    def no_child(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert clipseg.load_model("shapes-tiny", backend="onnx").backend.folder == folder


def test_backend_choice_errors(tiny_export):
    with pytest.raises(ValueError, match="backend 'tensorrt'"):
        clipseg.load_model("shapes-tiny", backend="tensorrt")
    with pytest.raises(ValueError, match="is an ONNX export"):
        clipseg.load_model(tiny_export, backend="torch")
    with pytest.raises(ValueError, match="onnxruntime's CPU provider"):
        clipseg.load_model(tiny_export, device="cuda")


def test_gemm_scales_fold_into_copies_of_shared_weights():
    """Two Gemms (alpha, beta != 1) share one bias through an Identity, as torch's exporter shares equal weights."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from clipseg.export.quantize import fold_gemm_scales

    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((3, 4), dtype=np.float32), rng.standard_normal(3, dtype=np.float32)
    nodes = [
        helper.make_node("Identity", ["bias"], ["bias_alias"]),
        helper.make_node(
            "Gemm", ["x", "weight", "bias"], ["y1"], name="g1", alpha=1.702, beta=1.702, transB=1
        ),
        helper.make_node(
            "Gemm", ["x", "weight", "bias_alias"], ["y2"], name="g2", alpha=0.5, beta=2.0, transB=1
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [2, 3]) for y in ("y1", "y2")],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def run(m):
        session = onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": np.ones((2, 4), dtype=np.float32)})

    want = run(model)
    assert fold_gemm_scales(model) == 2
    assert all(a.f == 1.0 for n in model.graph.node for a in n.attribute if a.name in ("alpha", "beta"))
    for got, expected in zip(run(model), want):
        assert np.allclose(got, expected, atol=1e-5)


def test_the_base_install_is_torch_free_and_make_install_adds_onnx():
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}

    assert not names(project["dependencies"]) & {"torch", "lightning", "torchmetrics", "torchvision"}
    extras = project["optional-dependencies"]
    assert {"onnxruntime", "onnx"} <= names(extras["onnx"])
    assert set(re.findall(r"\w+", extras["all"][0].partition("[")[2])) >= {"torch", "train", "onnx"}
    install = [
        line for line in (root / "Makefile").read_text().splitlines() if "-c constraints.txt -e" in line
    ]
    assert len(install) == 1 and "all" in install[0]
    # The package states ranges (issue 30): no exact pins, no upper caps on the major dependencies;
    # the local CPU torch wheel is pinned in the repository's constraints file only.
    requirements = project["dependencies"] + [r for extra in extras.values() for r in extra]
    majors = {"torch", "transformers", "huggingface_hub", "gradio", "lightning", "datasets", "onnxruntime"}
    ranged = [r for r in requirements if names([r]) & majors]
    assert names(ranged) == majors and not [r for r in ranged if "<" in r or "==" in r]
    assert "torch==2.13.0" in (root / "constraints.txt").read_text().splitlines()


def test_load_model_onnx_of_a_broken_file_fails_with_the_childs_error(tmp_path, monkeypatch, capfd):
    from clipseg.zoo import ZooError

    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ZooError, match=r"ONNX export of .*broken\.safetensors failed"):
        clipseg.load_model(broken, backend="onnx")
    err = capfd.readouterr().err
    assert "clipseg export: error:" in err and "broken.safetensors" in err
    assert not any((tmp_path / "cache" / "onnx").glob("*/config.json"))


def test_onnx_gives_the_presence_torch_gives_and_an_export_without_the_summary_falls_back(
    tiny_export, torch_predictor, tmp_path
):
    import shutil

    from clipseg.inference.presence import presence

    calibration = torch_predictor.calibration
    assert calibration.head is not None
    image, _ = scene()
    want = torch_predictor.segment(image, PHRASES).presence
    exported = clipseg.load_model(tiny_export)
    exported.calibration = calibration  # tiny_export is made without one
    np.testing.assert_allclose(exported.segment(image, PHRASES).presence, want, atol=1e-4)
    # An export made before the decoder graph had its ``pooled`` output: the map-only calibration.
    old = tmp_path / "old"
    shutil.copytree(tiny_export, old)
    graph = onnx.load(str(old / "decoder.onnx"))
    assert [o.name for o in graph.graph.output] == ["logits", "pooled"]
    graph.graph.output.pop()
    onnx.save(graph, str(old / "decoder.onnx"))
    older = clipseg.load_model(old)
    older.calibration = calibration
    probs = older.predict(image, PHRASES)
    np.testing.assert_allclose(
        older.segment(image, PHRASES).presence, presence(probs, calibration), atol=1e-6
    )
    # It is the other formula: it disagrees with the same graph's head by more than float noise (both
    # may be near 0 or 1, so relatively).
    head = exported.segment(image, PHRASES).presence
    assert not np.allclose(older.segment(image, PHRASES).presence, head, rtol=1e-2, atol=1e-9)
