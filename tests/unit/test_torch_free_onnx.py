"""ONNX inference imports neither torch nor transformers in a full install, and its tokenizer (the
``tokenizers`` library alone) encodes exactly as transformers' does (issue 36, defect 10)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from clipseg.core.json_tokenizer import JsonTokenizer
from clipseg.core.prompts import tokenize_prompts
from clipseg.core.tokenizer import build_clip_tokenizer, unknown_words, vocabulary_words

PROMPTS = [
    "red circle",
    "a BLUE square, left of the green triangle!",
    "würfel 3 ünïcödé",
    "circle " * 60,  # more than 77 tokens: cut
    "x",
]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("tokenizer")
    fast = build_clip_tokenizer(["red circle", "blue square", "green triangle left of"], folder)
    return fast, JsonTokenizer(folder)


def test_json_tokenizer_encodes_as_transformers(tokenizers):
    fast, plain = tokenizers
    assert plain.model_max_length == fast.model_max_length
    for max_length in (None, 8, 77):
        want = tokenize_prompts(fast, PROMPTS, max_length)
        got = tokenize_prompts(plain, PROMPTS, max_length)
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(got[key], want[key])
    assert plain.get_vocab() == fast.get_vocab()
    for text in PROMPTS:
        assert plain.tokenize(text) == fast.tokenize(text)
        assert unknown_words(plain, text) == unknown_words(fast, text)
    assert vocabulary_words(plain) == vocabulary_words(fast)


def test_onnx_predict_in_a_full_install_imports_no_torch(tiny_export, tmp_path):
    image = tmp_path / "scene.png"
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(image)
    code = (
        "import sys\nfrom clipseg.cli import main\n"
        f"code = main(['predict', {str(image)!r}, '--prompt', 'red circle', '--prompt-image', {str(image)!r}, "
        f"'--model', {str(tiny_export)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "print('LOADED', sorted(m for m in ('torch', 'transformers') if m in sys.modules), code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED [] 0" in result.stdout, result.stdout + result.stderr[-3000:]
    assert (tmp_path / "out" / "scene_0_red-circle.png").is_file()
