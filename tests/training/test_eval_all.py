"""``make eval-all`` on fixture data: every protocol runs, missing data or weights become "skipped" rows."""

from __future__ import annotations

import json

import pytest

from clipseg.cli import eval_all as eval_all_cli
from clipseg.eval import eval_all
from clipseg.modeling import ClipSeg, ClipSegConfig


@pytest.fixture
def models(tiny_backbone_dir, tiny_tokenizer):
    def tiny():
        config = ClipSegConfig(
            backbone=str(tiny_backbone_dir), extract_layers=(1, 2), reduce_dim=8, image_size=32
        )
        return ClipSeg(config), tiny_tokenizer

    def broken():
        raise OSError("cannot load the CLIP backbone 'x'\nsecond line")

    return {"tiny": tiny, "absent": "weights not on this machine", "broken": broken}


def test_every_benchmark_with_data_runs_and_the_rest_is_skipped(models, data_root, tmp_path):
    report = eval_all.run_eval_all(models, data_root=data_root, batch_size=2, num_workers=0, limit=1)
    assert report["models"] == {
        "tiny": "ok",
        "absent": "skipped: weights not on this machine",
        "broken": "skipped: cannot load: cannot load the CLIP backbone 'x'",
    }
    skipped = {name for name, status in report["benchmarks"].items() if status != "ok"}
    assert skipped == {"refmatte-rw100"}  # the only benchmark the fixtures do not prepare
    runs = report["results"]["tiny"]
    assert all(run["status"] == "ok" for run in runs.values())
    for bench, key in [
        ("phrasecut", "miou_0.3"),
        ("pascal5i-fold3", "miou"),
        ("pascal5i", "fbiou"),  # mean over the folds
        ("coco20i", "ap"),
        ("pascal-zeroshot-10", "miou_unseen"),
        ("refmatte-keyword", "sad"),
        ("shapes", "ap"),
    ]:
        assert 0 <= runs[bench]["metrics"][key] < float("inf"), (bench, key)

    paper = {"tiny": {"phrasecut/miou_0.3": 0.434}}
    markdown = eval_all.write_report(report, paper, tmp_path / "results", ["- test run"]).read_text()
    assert "| absent | skipped: weights not on this machine |" in markdown
    assert "| refmatte-rw100 | skipped: no prepared data" in markdown
    assert "(paper 43.4)" in markdown and "| tiny |" in markdown
    saved = json.loads((tmp_path / "results" / "eval-all.json").read_text())
    assert saved["results"]["tiny"]["shapes"]["status"] == "ok" and saved["paper"] == paper


def test_main_on_a_fresh_machine_runs_shapes(models, tmp_path, monkeypatch):
    monkeypatch.setattr(eval_all, "zoo_models", lambda: ({"tiny": models["tiny"]}, {}))
    monkeypatch.setenv("CLIPSEG_DATA", str(tmp_path / "no-data"))
    out = tmp_path / "results"
    assert (
        eval_all_cli.main(["--out", str(out), "--limit", "1", "--batch-size", "2", "--num-workers", "0"]) == 0
    )
    report = json.loads((out / "eval-all.json").read_text())
    assert report["results"]["tiny"]["shapes"]["status"] == "ok"
    assert report["benchmarks"]["phrasecut"].startswith("skipped: no prepared data")
    assert "## shapes test" in (out / "eval-all.md").read_text()


def test_an_unknown_model_is_an_error_and_a_model_file_is_a_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        eval_all_cli.main(["--models", "nosuch", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2 and "--models 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    from clipseg.zoo.store import repo_zoo_dir

    shipped = str(repo_zoo_dir() / "shapes-tiny.safetensors")
    args = [
        "--models",
        shipped,
        "--benchmarks",
        "shapes",
        "--limit",
        "1",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
    ]
    assert eval_all_cli.main([*args, "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "eval-all.json").read_text())
    assert report["results"][shipped]["shapes"]["status"] == "ok"


def test_skipped_hints_name_what_really_gets_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "empty-cache"))
    models, _ = eval_all.zoo_models()
    assert "clipseg zoo fetch clipseg-rd64" in models["clipseg-rd64"]  # on the hub: fetch works
    assert "zoo fetch" not in models["rd64-uni"] and "empty-cache" in models["rd64-uni"]  # not on the hub
