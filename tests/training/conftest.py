"""Fixtures of the training tests: a tiny named CLIP backbone folder and every benchmark prepared from raw fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A folder with a random 10-block CLIP and its tokenizer, standing in for a hub name such as
    openai/clip-vit-base-patch16 (the paper configs extract blocks 3, 7 and 9)."""
    from transformers import CLIPConfig, CLIPModel

    from clipseg.modeling.tiny import tiny_clip_config

    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = tiny_clip_config(
        vocab_size=len(tiny_tokenizer), num_layers=10, hidden_size=16, projection_dim=16
    )
    CLIPModel(CLIPConfig.from_dict(config)).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """``$CLIPSEG_DATA`` layout with every benchmark prepared from the raw-format fixtures (a few rows each)."""
    from fixture_data.raw_formats import (
        write_coco20i,
        write_pascal5i,
        write_pascal_zeroshot,
        write_phrasecut,
        write_refmatte,
    )

    from clipseg.data.prepare import prepare

    root = tmp_path_factory.mktemp("data")
    raw = tmp_path_factory.mktemp("raw")
    for split in ("train", "val", "test"):
        write_phrasecut(raw / f"phrasecut-{split}", split=split)
        prepare("phrasecut", raw / f"phrasecut-{split}", root / "phrasecut", splits=[split], shard_size=4)
    write_pascal5i(raw / "pascal5i")
    write_coco20i(raw / "coco20i", classes=(1, 2, 3, 4))  # one held-out class in each fold
    for name in ("pascal5i", "coco20i"):
        for fold in range(4):
            options = {"fold": fold, "n_episodes": 4}
            prepare(name, raw / name, root / f"{name}-fold{fold}", splits=["test"], options=options)
    write_pascal_zeroshot(raw / "zeroshot")
    prepare("pascal-zeroshot", raw / "zeroshot", root / "pascal-zeroshot", splits=["val"])
    for setting in ("keyword", "expression"):
        write_refmatte(raw / f"refmatte-{setting}", split="test")
        prepare(
            "refmatte",
            raw / f"refmatte-{setting}",
            root / "refmatte" / setting,
            splits=["test"],
            options={"setting": setting},
        )
    return root
