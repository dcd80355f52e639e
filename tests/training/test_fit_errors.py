"""``clipseg fit`` with a model to start from that is no model: one ``error:`` line (issue 36, defect 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipseg.training import cli

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("kind", ["unknown name", "image file"])
def test_init_from_that_is_no_model_is_one_error_line(tmp_path, capsys, kind):
    init_from = "nope"
    if kind == "image file":
        init_from = str(tmp_path / "photo.png")
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(init_from)
    out = tmp_path / "outputs"
    args = ["fit", "--config", str(CONFIGS / "finetune.yaml"), "--model.init_from", init_from]
    assert cli.run_cli([*args, "--output_root", str(out), "--wandb_mode", "disabled"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: model.init_from: "), errors
    assert init_from in errors[0]
    assert not out.exists()
