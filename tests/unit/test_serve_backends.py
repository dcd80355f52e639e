"""``clipseg serve --backend onnx --quantize int8``: ``load_model(..., quantize="int8")`` exports an int8
copy once into the cache, beside the fp32 one; wrong combinations and out-of-range operations options
end in one message (issue 33)."""

from __future__ import annotations

import pytest

import clipseg
from clipseg.cli import main
from clipseg.zoo.store import ZooError


@pytest.mark.slow  # exports shapes-tiny in a child process (torch), about 30 s here
def test_load_model_int8_exports_a_quantized_copy_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path))
    predictor = clipseg.load_model("shapes-tiny", backend="onnx", quantize="int8")
    layout = predictor.backend.layout
    assert layout.quantize == "int8" and predictor.backend.folder.name.endswith("-int8")
    assert predictor.backend.folder.parent == tmp_path / "onnx"


def test_quantize_needs_the_onnx_backend_and_an_int8_export(tiny_export, capsys):
    with pytest.raises(ValueError, match="runs on onnxruntime"):
        clipseg.load_model("shapes-tiny", quantize="int8")
    with pytest.raises(ZooError, match="not int8"):
        clipseg.load_model(tiny_export, backend="onnx", quantize="int8")
    assert main(["serve", "--quantize", "int8", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["clipseg serve: error: --quantize int8 runs on onnxruntime: add --backend onnx"]


@pytest.mark.parametrize(
    "option", [["--max-queue", "-1"], ["--request-timeout", "0"], ["--grace", "-1"], ["--threads", "0"]]
)
def test_an_out_of_range_operations_option_ends_in_one_error_line_naming_it(option, capsys):
    assert main(["serve", *option, "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"clipseg serve: error: {' '.join(option)}:"), err
