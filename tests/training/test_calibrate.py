"""``clipseg calibrate``: a new model file whose only change is the presence calibration."""

import json

import numpy as np
from safetensors import safe_open

from clipseg.cli import main as clipseg_main
from clipseg.data.prepare import prepare
from clipseg.inference.presence import PRESENCE_META, Calibration
from clipseg.zoo import load_model, resolve_weights


def _read(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with safe_open(str(path), framework="numpy") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())  # noqa: SIM118


def test_calibrate_changes_the_stored_calibration_and_nothing_else(tmp_path):
    data = tmp_path / "shapes"
    prepare("shapes", None, out=data, splits=["val"], options={"length": 16, "size": 96})
    out = tmp_path / "calibrated.safetensors"
    assert clipseg_main(["calibrate", "--model", "shapes-tiny", "--data", str(data), "--out", str(out)]) == 0
    before_tensors, before_meta = _read(resolve_weights("shapes-tiny").path)
    after_tensors, after_meta = _read(out)
    assert before_tensors.keys() == after_tensors.keys()
    for name, value in before_tensors.items():
        np.testing.assert_array_equal(after_tensors[name], value, err_msg=name)
    stored = after_meta.pop(PRESENCE_META)
    assert stored != before_meta.pop(PRESENCE_META, None)
    assert after_meta == before_meta
    assert json.loads(stored)["weights"]
    predictor = load_model(out, device="cpu")
    assert predictor.calibration == Calibration.from_json(stored)
    # The head reads the map's 3 features and the decoder's pooled summary (3 x its 32 channels).
    assert len(predictor.calibration.head.weights) == 3 + 3 * 32


def test_calibrate_without_val_shards_is_one_error_line(tmp_path, capsys):
    code = clipseg_main(
        ["calibrate", "--model", "shapes-tiny", "--data", str(tmp_path), "--out", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 1
        and len(err) == 1
        and err[0].startswith("clipseg calibrate: error:")
        and str(tmp_path) in err[0]
    )
    assert not (tmp_path / "x").exists()


def test_calibrating_a_shipped_file_in_place_updates_its_card(tmp_path, monkeypatch):
    import shutil

    from clipseg.zoo import get_card
    from clipseg.zoo.store import SHIPPED_DIR

    zoo = tmp_path / "zoo"
    shutil.copytree(SHIPPED_DIR, zoo)
    monkeypatch.setenv("CLIPSEG_ZOO", str(zoo))
    before = get_card("shapes-tiny")
    data = tmp_path / "shapes"
    prepare("shapes", None, out=data, splits=["val"], options={"length": 16, "size": 96})
    shipped = str(zoo / "shapes-tiny.safetensors")
    assert clipseg_main(["calibrate", "--model", shipped, "--data", str(data), "--out", shipped]) == 0
    after = get_card("shapes-tiny")
    assert after.sha256 != before.sha256 and after.measured == before.measured
    # The zoo name still loads (its file is verified against the card) with the new calibration.
    assert (
        load_model("shapes-tiny", device="cpu").calibration == load_model(shipped, device="cpu").calibration
    )


def test_fit_ends_with_an_uncalibrated_model_and_a_reason_when_the_split_cannot_be_used(tmp_path):
    import shutil

    from clipseg.training.finetune_output import calibrate_in_place

    model = tmp_path / "model.safetensors"
    shutil.copy(resolve_weights("shapes-tiny").path, model)
    before = model.read_bytes()
    message = calibrate_in_place(model, str(tmp_path / "no-data"), 50)
    assert message.startswith("presence calibration: not fitted") and "no val shards" in message
    assert model.read_bytes() == before  # the run's model is kept as it was
