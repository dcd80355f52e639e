"""What a new user tries with `clipseg predict` and the Python API: nothing lost, no traceback (issue 15)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clipseg.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "clipseg" / "assets" / "example.png"


def _predict(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["predict", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err.strip()


def _scene(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_inputs_with_the_same_stem_never_write_the_same_files(tmp_path, capsys):
    inputs = [
        _scene(tmp_path / "photo.png", 1),
        _scene(tmp_path / "photo.webp", 2),
        _scene(tmp_path / "a" / "x.png", 3),
        _scene(tmp_path / "b" / "x.png", 4),
    ]
    code, summary, err = _predict(
        capsys, *map(str, inputs), "--prompt", "red square", "--out", str(tmp_path / "o")
    )
    assert code == 0, err
    files = [m["file"] for e in summary["images"] for m in e["masks"]] + [
        e["overlay"] for e in summary["images"]
    ]
    assert len(set(files)) == len(files) == 8
    written = sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png"))
    assert len(written) == 8  # nothing overwritten
    # Same folder and stem: the extension is added; same name in other folders: the tree is mirrored.
    assert {Path(e["overlay"]).relative_to(tmp_path / "o").as_posix() for e in summary["images"]} == {
        "photo-png_overlay.png",
        "photo-webp_overlay.png",
        "a/x_overlay.png",
        "b/x_overlay.png",
    }


def test_output_names_keep_plain_stems_when_unique_and_are_documented_in_help(tmp_path, capsys):
    code, summary, err = _predict(
        capsys,
        str(_scene(tmp_path / "a.png", 1)),
        str(_scene(tmp_path / "b.png", 2)),
        "--prompt",
        "red square",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0, err
    assert {Path(e["overlay"]).name for e in summary["images"]} == {"a_overlay.png", "b_overlay.png"}
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "photo-jpg" in capsys.readouterr().out  # the naming rule is in --help


def test_a_single_string_is_one_prompt_and_a_single_path_one_image(predictor):
    probs = predictor.predict_batch([str(EXAMPLE)], "red square")
    assert probs[0].shape[0] == 1  # not the prompts "r", "e", "d", ...
    probs = predictor.predict_batch(str(EXAMPLE), ["red square", "blue circle"])
    assert len(probs) == 1 and probs[0].shape[0] == 2
    assert predictor.predict(EXAMPLE, "red square").shape[0] == 1


def test_a_long_prompt_is_cut_to_the_text_tower_with_one_warning(predictor):
    limit = predictor.backend.model.max_text_tokens
    assert limit == 32  # shapes-tiny's text tower, not CLIP's 77
    with pytest.warns(UserWarning, match=f"model's {limit} text positions") as caught:
        probs = predictor.predict(EXAMPLE, " ".join(["red square"] * 30))
    assert probs.shape[0] == 1
    assert len([w for w in caught if "text positions" in str(w.message)]) == 1


def test_words_outside_a_fixed_vocabulary_are_named_once(predictor):
    predictor._warned_words.clear()
    with pytest.warns(UserWarning, match="does not know the word") as caught:
        predictor.predict(EXAMPLE, ["a dog", "red 🐶"])
    message = str(caught[0].message)
    assert "'dog'" in message and "'🐶'" in message and "'red'" not in message.split("It knows")[0]
    assert "clipseg zoo list" in message and "square" in message  # where the vocabulary is, and what it is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(EXAMPLE, ["a dog", "red square"])  # said once: no second warning


def test_an_all_black_prompt_mask_is_refused(predictor):
    with pytest.raises(ValueError, match="all black"):
        predictor.predict(EXAMPLE, [(str(EXAMPLE), np.zeros((192, 192), np.uint8))])


@pytest.fixture(scope="module")
def fit_checkpoint(tmp_path_factory) -> Path:
    from training_helpers import short_fit

    return short_fit(tmp_path_factory.mktemp("run")) / "last.ckpt"


def test_a_lightning_checkpoint_of_clipseg_fit_is_a_model(fit_checkpoint, tmp_path, capsys):
    code, summary, err = _predict(
        capsys, str(EXAMPLE), "--prompt", "red square", "--model", str(fit_checkpoint), "--out", str(tmp_path)
    )
    assert code == 0, err
    assert Path(summary["images"][0]["masks"][0]["file"]).is_file()


def _garbage(tmp_path: Path) -> list[str]:
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 64)
    return ["--model", str(tmp_path / "garbage.safetensors")]


def _garbage_ckpt(tmp_path: Path) -> list[str]:
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    return ["--model", str(tmp_path / "garbage.ckpt")]


def _out_is_a_file(tmp_path: Path) -> list[str]:
    (tmp_path / "taken").write_text("x")
    return ["--out", str(tmp_path / "taken")]


def _out_below_a_file(tmp_path: Path) -> list[str]:
    (tmp_path / "taken").write_text("x")
    return ["--out", str(tmp_path / "taken" / "masks")]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (_garbage, "garbage.safetensors is not a safetensors model file"),
        (_garbage_ckpt, "garbage.ckpt: not a Lightning checkpoint"),
        (_out_is_a_file, "is a file; pass a folder"),
        (_out_below_a_file, "is below the file"),
        (lambda tmp_path: ["--prompt-image", str(tmp_path / "no:such.png")], "--prompt-image"),
    ],
)
def test_bad_model_out_or_prompt_file_is_one_error_line(tmp_path, capsys, make_args, message):
    code, _, err = _predict(capsys, str(EXAMPLE), "--prompt", "red square", *make_args(tmp_path))
    assert code != 0
    assert message in err and len(err.splitlines()) == 1 and err.startswith("clipseg predict: error:"), err
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_torch_without_cuda_is_one_error_line(tmp_path, capsys):
    code, _, err = _predict(
        capsys, str(EXAMPLE), "--prompt", "red square", "--device", "cuda", "--out", str(tmp_path / "o")
    )
    assert code != 0 and "device 'cuda'" in err and "use cpu" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_prompt_image_path_containing_a_colon_is_read_whole(tmp_path, capsys):
    support = tmp_path / "shot 12:30.png"
    Image.open(EXAMPLE).save(support)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((192, 192), 255, np.uint8)).save(mask)
    for i, spec in enumerate((str(support), f"{support}:{mask}")):
        code, summary, err = _predict(
            capsys, str(EXAMPLE), "--prompt-image", spec, "--out", str(tmp_path / f"o{i}")
        )
        assert code == 0, err
        want = support.name if i == 0 else f"{support.name}:{mask.name}"  # the mask is named too (issue 36)
        assert summary["images"][0]["masks"][0]["prompt"] == want


def test_zoo_list_shows_the_vocabulary_of_a_fixed_vocabulary_model(predictor, capsys):
    from clipseg.core.tokenizer import vocabulary_words

    assert main(["zoo", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "vocabulary:" in x)
    assert line.split("vocabulary:")[1].split() == vocabulary_words(predictor.backend.tokenizer)


def test_cli_warnings_are_one_line_each(tmp_path, capsys):
    long = " ".join(["red square"] * 30)
    code, _, err = _predict(
        capsys, str(EXAMPLE), "--prompt", long, "--prompt", "a dog", "--out", str(tmp_path)
    )
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("clipseg predict: warning:") for line in lines), err


def test_load_model_names_the_readers_of_a_lightning_checkpoint(fit_checkpoint):
    from clipseg import load_model
    from clipseg.zoo import ZooError

    with pytest.raises(ZooError, match="load_checkpoint_model"):
        load_model(fit_checkpoint)
