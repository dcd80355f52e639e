"""The zoo: names, sha256 verification, resolution order and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import clipseg
from clipseg.cli.zoo import main as zoo_main
from clipseg.core.files import sha256_of
from clipseg.core.hub_access import hub_command
from clipseg.zoo import ZooError, get_card
from clipseg.zoo.store import SHIPPED_DIR, repo_zoo_dir


def test_list_models_names_every_card():
    names = clipseg.list_models()
    for expected in (
        "shapes-tiny",
        "clipseg-rd64-refined",
        "clipseg-rd64",
        "clipseg-rd16",
        "rd64-uni",
        "rd64-uni-refined",
        "rd16-uni",
    ):
        assert expected in names


def test_the_repositorys_zoo_folder_is_the_package_data(monkeypatch):
    # `clipseg zoo export --out zoo` (run from the repository) writes the shipped file and card.
    monkeypatch.delenv("CLIPSEG_ZOO", raising=False)
    assert (Path(__file__).resolve().parents[2] / "zoo").resolve() == repo_zoo_dir().resolve() == SHIPPED_DIR
    assert {"cards.json", "shapes-tiny.safetensors"} <= {p.name for p in SHIPPED_DIR.iterdir()}


def test_shipped_model_matches_its_card():
    card = get_card("shapes-tiny")
    assert card.sha256 is not None, "the shipped model's card must carry its digest"
    assert sha256_of(repo_zoo_dir() / card.filename) == card.sha256
    assert zoo_main(["verify", "shapes-tiny"]) == 0


@pytest.fixture()
def zoo_copy(tmp_path, monkeypatch):
    """A copy of the repo zoo that tests may tamper with."""
    folder = tmp_path / "zoo"
    shutil.copytree(repo_zoo_dir(), folder)
    monkeypatch.setenv("CLIPSEG_ZOO", str(folder))
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return folder


def test_tampered_file_is_refused_with_both_digests(zoo_copy):
    card = get_card("shapes-tiny")
    weights = zoo_copy / card.filename
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256 mismatch") as err:
        clipseg.load_model("shapes-tiny")
    assert card.sha256 in str(err.value) and sha256_of(weights) in str(err.value)
    assert zoo_main(["verify", "shapes-tiny"]) == 1


def test_unknown_name_lists_known_models():
    with pytest.raises(ZooError, match=r"unknown model 'nope'.*shapes-tiny"):
        clipseg.load_model("nope")


def test_offline_download_says_what_to_fetch_and_where(zoo_copy, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ZooError) as err:
        clipseg.load_model("clipseg-rd64")
    message = str(err.value)
    assert hub_command("download CIDAS/clipseg-rd64") in message
    assert str(zoo_copy.parent / "hf" / "hub") in message and "HF_HUB_OFFLINE" in message


def test_original_weights_without_hub_repo_say_where_to_put_them(zoo_copy):
    with pytest.raises(ZooError, match=r"rd64-uni\.pth.*github\.com/timojl/clipseg"):
        clipseg.load_model("rd64-uni")


def test_card_without_published_digest_is_pinned_on_first_use(zoo_copy):
    cards = json.loads((zoo_copy / "cards.json").read_text())
    for card in cards:
        if card["name"] == "shapes-tiny":
            card["sha256"] = None
    (zoo_copy / "cards.json").write_text(json.dumps(cards))
    clipseg.load_model("shapes-tiny")  # pins the digest it sees
    data = bytearray((zoo_copy / "shapes-tiny.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (zoo_copy / "shapes-tiny.safetensors").write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256 mismatch"):
        clipseg.load_model("shapes-tiny")
