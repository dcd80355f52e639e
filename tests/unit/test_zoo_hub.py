"""Hub repo ids and hub zoo cards through the standard Hugging Face cache, offline.

Each test builds a cache under a temporary ``HF_HOME`` in the real layout
(``models--org--name/{blobs,refs,snapshots}``): a tiny random transformers CLIPSeg under
``CIDAS/clipseg-rd64-refined`` (``model.safetensors`` plus a ``pytorch_model.bin`` that cannot be
read, so loading it would fail) and this project's shipped ``shapes-tiny`` file under the made-up
``someone/my-clipseg``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixture_data.checkpoint_layouts import (
    PROMPTS,
    TOL,
    image_and_pixels,
    save_transformers_folder,
    transformers_probs,
)
from fixture_data.hub_cache import HTTP_CLIENTS, connect_error, folder_files, write_hub_repo
from PIL import Image

import clipseg
from clipseg.cli import main as clipseg_main
from clipseg.cli.zoo import main as zoo_main
from clipseg.core.hub_access import hub_command
from clipseg.zoo import ZooError, hub
from clipseg.zoo.store import repo_zoo_dir

CIDAS = "CIDAS/clipseg-rd64-refined"
MINE = "someone/my-clipseg"
UNREADABLE_BIN = b"not a pickle: loading pytorch_model.bin instead of model.safetensors fails"


def transformers_files(hf, tokenizer, folder: Path, *, safetensors: bool = True) -> dict[str, bytes]:
    """A transformers CLIPSeg repository's files (weights, config, tokenizer, 64 px image processor)."""
    save_transformers_folder(hf, folder, safetensors=safetensors)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 64, "width": 64}}))
    return folder_files(folder)


def files_under(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch, make_hf_clipseg, tiny_tokenizer):
    """An offline HF cache with both repositories; HOME, our cache and the working folder are empty."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLIPSEG_CACHE", str(tmp_path / "clipseg-cache"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    cache = tmp_path / "hf" / "hub"
    hf = make_hf_clipseg(complex_head=True)
    files = transformers_files(hf, tiny_tokenizer, tmp_path / "build")
    snapshot = write_hub_repo(cache, CIDAS, {**files, "pytorch_model.bin": UNREADABLE_BIN})
    shipped = (repo_zoo_dir() / "shapes-tiny.safetensors").read_bytes()
    write_hub_repo(cache, MINE, {"model.safetensors": shipped, "README.md": b"# my clipseg\n"})
    return SimpleNamespace(cache=cache, hf=hf, snapshot=snapshot, root=tmp_path)


def test_repo_ids_and_zoo_card_load_offline_from_the_hf_cache_writing_nothing(hub_cache, tiny_tokenizer):
    before = files_under(hub_cache.root)
    image, pixels = image_and_pixels()
    want = transformers_probs(hub_cache.hf, tiny_tokenizer, pixels)
    by_id = clipseg.load_model(CIDAS, device="cpu").predict(image, PROMPTS)
    by_card = clipseg.load_model("clipseg-rd64-refined", device="cpu").predict(image, PROMPTS)
    assert np.abs(by_id - want).max() <= TOL and np.abs(by_card - want).max() <= TOL
    mine = clipseg.load_model(MINE, device="cpu").predict(image, PROMPTS)
    shipped = clipseg.load_model("shapes-tiny", device="cpu").predict(image, PROMPTS)
    np.testing.assert_array_equal(mine, shipped)
    assert files_under(hub_cache.root) == before  # nothing downloaded, converted, pinned or cached


def test_safetensors_is_loaded_when_the_repo_also_has_pytorch_model_bin(hub_cache):
    assert hub.snapshot_file(CIDAS).name == "model.safetensors"
    # The .bin next to it is unreadable: a loader that picked it would fail, as it does alone.
    bin_only = {p.name: p.read_bytes() for p in hub_cache.snapshot.iterdir() if p.name != "model.safetensors"}
    write_hub_repo(hub_cache.cache, "someone/bin-only", bin_only)
    with pytest.raises(Exception, match=r"pickle|Unpickl|load"):
        clipseg.load_model("someone/bin-only", device="cpu")
    clipseg.load_model(CIDAS, device="cpu")


def test_online_listing_downloads_only_safetensors_configs_and_tokenizer(hub_cache, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append(kwargs)
        return str(hub_cache.snapshot)

    listing = sorted(p.name for p in hub_cache.snapshot.iterdir())
    assert "pytorch_model.bin" in listing and "model.safetensors" in listing
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo, revision: listing)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert hub.snapshot_file(CIDAS) == hub_cache.snapshot / "model.safetensors"
    assert calls[0]["allow_patterns"] == ["model.safetensors", *hub.SIDE_FILE_PATTERNS]
    assert calls[0]["cache_dir"] == hub_cache.cache and "local_files_only" not in calls[0]


def test_online_downloads_pass_the_revision_through(hub_cache, monkeypatch):
    """``--revision`` / ``revision=`` must reach the listing and the download, not only the offline cache."""
    import huggingface_hub

    listed, downloaded = [], []

    def fake_snapshot_download(repo_id, **kwargs):
        downloaded.append(kwargs.get("revision"))
        return str(hub_cache.snapshot)

    listing = sorted(p.name for p in hub_cache.snapshot.iterdir())
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "list_repo_files",
        lambda self, repo, revision: listed.append(revision) or listing,
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert hub.snapshot_file(CIDAS, "v1.2") == hub_cache.snapshot / "model.safetensors"
    assert listed == downloaded == ["v1.2"]
    clipseg.load_model(CIDAS, revision="3f2a9c1", device="cpu")  # the public entry point too
    assert listed[-1] == downloaded[-1] == "3f2a9c1"


@pytest.mark.parametrize("client", list(HTTP_CLIENTS))
def test_a_hub_that_cannot_be_reached_leaves_the_cached_snapshot(hub_cache, monkeypatch, client):
    import huggingface_hub

    error = connect_error(client)

    def no_network(self, repo, revision):
        raise error

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", no_network)
    assert hub.snapshot_file(CIDAS) == hub_cache.snapshot / "model.safetensors"


def test_our_file_loads_as_ours_even_next_to_a_config_json(hub_cache):
    shipped = (repo_zoo_dir() / "shapes-tiny.safetensors").read_bytes()
    config = json.dumps({"model_type": "clipseg", "note": "someone's own notes"}).encode()
    write_hub_repo(
        hub_cache.cache, "someone/with-config", {"model.safetensors": shipped, "config.json": config}
    )
    image, _ = image_and_pixels()
    got = clipseg.load_model("someone/with-config", device="cpu").predict(image, PROMPTS)
    np.testing.assert_array_equal(got, clipseg.load_model(MINE, device="cpu").predict(image, PROMPTS))


def test_pytorch_model_bin_alone_loads_weights_only(hub_cache, make_hf_clipseg, tiny_tokenizer):
    hf = make_hf_clipseg(seed=3)
    files = transformers_files(hf, tiny_tokenizer, hub_cache.root / "bin", safetensors=False)
    write_hub_repo(hub_cache.cache, "someone/old-style", files)
    image, pixels = image_and_pixels()
    got = clipseg.load_model("someone/old-style", device="cpu").predict(image, PROMPTS)
    assert np.abs(got - transformers_probs(hf, tiny_tokenizer, pixels)).max() <= TOL


def test_revision_selects_a_commit_and_a_card_pins_one(
    hub_cache, make_hf_clipseg, tiny_tokenizer, monkeypatch
):
    old_hf = make_hf_clipseg(complex_head=True, seed=7)
    old = write_hub_repo(
        hub_cache.cache, CIDAS, transformers_files(old_hf, tiny_tokenizer, hub_cache.root / "old"), ref=None
    )
    image, pixels = image_and_pixels()
    want_old = transformers_probs(old_hf, tiny_tokenizer, pixels)
    want_main = transformers_probs(hub_cache.hf, tiny_tokenizer, pixels)
    assert np.abs(want_old - want_main).max() > 10 * TOL
    pinned = clipseg.load_model(CIDAS, revision=old.name, device="cpu").predict(image, PROMPTS)
    assert np.abs(pinned - want_old).max() <= TOL
    assert np.abs(clipseg.load_model(CIDAS, device="cpu").predict(image, PROMPTS) - want_main).max() <= TOL

    zoo = hub_cache.root / "zoo"
    shutil.copytree(repo_zoo_dir(), zoo)
    cards = json.loads((zoo / "cards.json").read_text())
    for card in cards:
        if card["name"] == "clipseg-rd64-refined":
            card["revision"] = old.name
    (zoo / "cards.json").write_text(json.dumps(cards))
    monkeypatch.setenv("CLIPSEG_ZOO", str(zoo))
    by_card = clipseg.load_model("clipseg-rd64-refined", device="cpu").predict(image, PROMPTS)
    assert np.abs(by_card - want_old).max() <= TOL


def test_hub_card_file_is_checked_against_the_hubs_digest(hub_cache):
    blob = (hub_cache.snapshot / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ZooError, match=f"sha256 mismatch.*expected {blob.name}"):
        clipseg.load_model("clipseg-rd64-refined", device="cpu")
    assert zoo_main(["verify", "clipseg-rd64-refined"]) == 1


def test_repo_missing_from_the_cache_offline_says_how_to_get_it(hub_cache):
    with pytest.raises(ZooError) as err:
        clipseg.load_model("someone/absent")
    message = str(err.value)
    assert hub_command("download someone/absent") in message
    assert str(hub_cache.cache) in message and "HF_HUB_OFFLINE" in message


def test_an_existing_folder_wins_over_a_repo_id_of_the_same_name(hub_cache, make_hf_clipseg, tiny_tokenizer):
    hf = make_hf_clipseg(seed=5)
    transformers_files(hf, tiny_tokenizer, Path(MINE))  # ./someone/my-clipseg, relative to the cwd
    image, pixels = image_and_pixels()
    got = clipseg.load_model(MINE, device="cpu").predict(image, PROMPTS)
    assert np.abs(got - transformers_probs(hf, tiny_tokenizer, pixels)).max() <= TOL


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("someone/my-clipseg", "hub"),
        ("CIDAS/clipseg-rd64-refined", "hub"),
        ("shapes-tiny", "zoo"),
        ("no-such-model", "zoo"),  # an unknown zoo name: the error lists the known ones
        ("./someone/my-clipseg", "path"),
        ("/abs/model", "path"),
        ("~/models/x", "path"),
        ("runs/a/b", "path"),
        ("outputs/model.safetensors", "path"),
        ("weights/rd64-uni.pth", "path"),
        ("../x", "path"),
        ("model.safetensors", "path"),
    ],
)
def test_names_paths_and_repo_ids_are_told_apart(text, kind):
    assert hub.kind_of(text, ["shapes-tiny"]) == kind


def test_predict_cli_takes_a_repo_id(hub_cache, capsys):
    image, _ = image_and_pixels()
    Image.fromarray(image).save(hub_cache.root / "image.png")
    for repo in (CIDAS, MINE):
        out = hub_cache.root / repo.replace("/", "_")
        argv = ["predict", str(hub_cache.root / "image.png"), "--prompt", "a red circle"]
        assert clipseg_main([*argv, "--model", repo, "--out", str(out), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        mask = Image.open(summary["images"][0]["masks"][0]["file"])
        assert summary["model"] == repo and mask.size == (64, 64)


def test_zoo_list_and_fetch_show_where_each_file_is(hub_cache, capsys):
    assert zoo_main(["list"]) == 0
    listing = capsys.readouterr().out
    line = next(row for row in listing.splitlines() if row.startswith("clipseg-rd64-refined "))
    assert str(hub_cache.snapshot / "model.safetensors") in line
    assert str(repo_zoo_dir() / "shapes-tiny.safetensors") in listing
    assert zoo_main(["fetch", "clipseg-rd64-refined"]) == 0
    fetched = capsys.readouterr().out
    assert str(hub_cache.snapshot / "model.safetensors") in fetched
    assert (hub_cache.snapshot / "model.safetensors").resolve().name in fetched  # the verified digest


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({"HF_HOME": "/h"}, "/h/hub"),
        ({"HF_HOME": "/h", "HF_HUB_CACHE": "/c"}, "/c"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"),
        ({}, "~/.cache/huggingface/hub"),
    ],
)
def test_hub_cache_follows_the_environment_like_huggingface_hub(monkeypatch, env, want):
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert hub.hub_cache_dir() == Path(want).expanduser()
