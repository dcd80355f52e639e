"""Model files are byte-for-byte reproducible: one checkpoint exported twice keeps its sha256."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from clipseg.modeling.safetensors_io import save_safetensors

SAVE = """
import sys, torch
from clipseg.modeling.safetensors_io import save_safetensors
g = torch.Generator().manual_seed(0)
tensors = {f"layer{i}.weight": torch.randn(3, i + 1, generator=g) for i in range(5)}
tensors["count"] = torch.arange(4)
save_safetensors(tensors, sys.argv[1], metadata={k: k * 3 for k in "qwertyuiop"})
"""


def test_two_processes_write_the_same_bytes_and_the_file_reads_back(tmp_path):
    # safetensors alone writes the metadata in a hash order that differs between processes.
    paths = [tmp_path / f"{i}.safetensors" for i in range(2)]
    for path in paths:
        subprocess.run([sys.executable, "-c", SAVE, str(path)], check=True)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == 1
    blob = paths[0].read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    assert size % 8 == 0 and list(header) == sorted(header)
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    with safe_open(str(paths[0]), framework="pt") as handle:
        assert handle.metadata() == {k: k * 3 for k in "qwertyuiop"}
    assert load_file(str(paths[0]))["count"].tolist() == [0, 1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.safetensors", "1.safetensors"]  # no leftovers


def test_save_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors({"a": torch.zeros(2)}, path, metadata={"v": "1"})
    save_safetensors({"b": torch.ones(3)}, path, metadata={"v": "2"})
    assert list(load_file(str(path))) == ["b"]
