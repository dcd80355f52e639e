"""``clipseg zoo push``: the upload folder and its model card, and where the upload stops offline.

The model file is the shipped ``shapes-tiny`` with the fine-tuning record that ``clipseg fit`` adds
to its metadata (``clipseg_finetune``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixture_data.hub_cache import HTTP_CLIENTS, connect_error, folder_files, write_hub_repo
from huggingface_hub import HfApi, ModelCard
from safetensors import safe_open
from safetensors.torch import load_file

import clipseg
from clipseg.cli.zoo import main as zoo_main
from clipseg.modeling.safetensors_io import save_safetensors
from clipseg.zoo import push
from clipseg.zoo.store import repo_zoo_dir

REPO = "someone/my-clipseg"
RECORD = {
    "base_model": "shapes-tiny",
    "data_dir": "data/my-shapes",
    "steps": 600,
    "val_metrics": {"val/miou": 0.8123, "val/ap": 0.9345},
    "val_step": 575,
}


def fine_tuned(tmp_path, **record) -> str:
    """A model file like the one ``clipseg fit`` writes (``outputs/<name>/model.safetensors``)."""
    shipped = repo_zoo_dir() / "shapes-tiny.safetensors"
    with safe_open(str(shipped), framework="pt") as handle:
        metadata = dict(handle.metadata())
    metadata |= {"clipseg_name": "my-shapes", "clipseg_finetune": json.dumps(RECORD | record)}
    path = tmp_path / "outputs" / "my-shapes" / "model.safetensors"
    path.parent.mkdir(parents=True)
    save_safetensors(load_file(str(shipped)), path, metadata=metadata)
    return str(path)


def test_dry_run_writes_the_file_and_a_model_card_from_its_metadata(tmp_path, capsys):
    model, out = fine_tuned(tmp_path), tmp_path / "upload"
    assert zoo_main(["push", model, "--repo", REPO, "--dry-run", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == Path(model).read_bytes()
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "mit"  # shapes-tiny's, from its zoo card
    assert card.data.library_name == "clipseg" and card.data.pipeline_tag == "image-segmentation"
    assert card.data.base_model is None  # shapes-tiny is not on the hub
    for fact in ("`shapes-tiny`", "`data/my-shapes`", "| 600 |", "step 575", "| val/miou | 0.8123 |"):
        assert fact in card.text
    assert f'clipseg.load_model("{REPO}")' in card.text and f"--model {REPO}" in card.text
    assert str(out) in capsys.readouterr().out


def test_hub_base_model_is_linked_and_its_license_used(tmp_path):
    out = tmp_path / "upload"
    model = fine_tuned(tmp_path, base_model="clipseg-rd64-refined")
    assert zoo_main(["push", model, "--repo", REPO, "--dry-run", str(out)]) == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "CIDAS/clipseg-rd64-refined" and card.data.license == "apache-2.0"


def test_unknown_base_license_must_be_given(tmp_path, capsys):
    model = fine_tuned(tmp_path, base_model="someone/other-clipseg")
    out = tmp_path / "upload"
    assert zoo_main(["push", model, "--repo", REPO, "--dry-run", str(out)]) == 1
    assert "--license" in capsys.readouterr().err and not out.exists()
    assert zoo_main(["push", model, "--repo", REPO, "--dry-run", str(out), "--license", "cc-by-4.0"]) == 0
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "cc-by-4.0" and card.data.base_model == "someone/other-clipseg"


def test_pushed_folder_loads_by_repo_id_from_the_hf_cache(tmp_path, monkeypatch):
    model, out = fine_tuned(tmp_path), tmp_path / "upload"
    assert zoo_main(["push", model, "--repo", REPO, "--dry-run", str(out)]) == 0
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write_hub_repo(tmp_path / "hf" / "hub", REPO, folder_files(out))  # as a download would leave it
    image = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    by_id = clipseg.load_model(REPO, device="cpu").predict(image, ["a red circle"])
    np.testing.assert_array_equal(
        by_id, clipseg.load_model(model, device="cpu").predict(image, ["a red circle"])
    )


def test_upload_stops_offline_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    model = fine_tuned(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = sorted(tmp_path.rglob("*"))
    assert zoo_main(["push", model, "--repo", REPO]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HF_HUB_OFFLINE" in err and "nothing was uploaded" in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("client", list(HTTP_CLIENTS))
def test_upload_without_network_says_so(tmp_path, monkeypatch, capsys, client):
    error = connect_error(client)

    def no_network(*args, **kwargs):
        raise error

    monkeypatch.setattr(push, "hub_offline", lambda: False)
    monkeypatch.setattr(HfApi, "create_repo", no_network)
    assert zoo_main(["push", fine_tuned(tmp_path), "--repo", REPO]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be reached" in err


def test_upload_sends_the_folder_to_the_repo(tmp_path, monkeypatch, capsys):
    sent = {}

    def upload(self, *, repo_id, folder_path, commit_message):
        sent[repo_id] = sorted(p.name for p in folder_path.iterdir())

    monkeypatch.setattr(push, "hub_offline", lambda: False)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo, **kw: f"https://huggingface.co/{repo}")
    monkeypatch.setattr(HfApi, "upload_folder", upload)
    assert zoo_main(["push", fine_tuned(tmp_path), "--repo", REPO, "--private"]) == 0
    assert sent == {REPO: ["README.md", "model.safetensors"]}
    assert f"https://huggingface.co/{REPO}" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["not ours", "bad repo", "folder not empty", "missing"])
def test_bad_input_is_one_error_line_and_nothing_written(tmp_path, capsys, problem):
    model, repo, out = fine_tuned(tmp_path), REPO, tmp_path / "upload"
    if problem == "not ours":
        model = str(tmp_path / "plain.safetensors")
        save_safetensors(load_file(str(repo_zoo_dir() / "shapes-tiny.safetensors")), model, metadata={})
    elif problem == "bad repo":
        repo = "./not/a repo"
    elif problem == "folder not empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    else:
        model = str(tmp_path / "absent.safetensors")
    before = sorted(tmp_path.rglob("*"))
    assert zoo_main(["push", model, "--repo", repo, "--dry-run", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("clipseg zoo: error: ") and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before
