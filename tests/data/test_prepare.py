"""``prepare``: shards + manifest, idempotency, every skipped row counted with its id, the CLI."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from clipseg.cli.prepare import prepare_main
from clipseg.data import prepare as prep


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setitem(
        prep.READERS, "stand-in", ("fixture_data.shards:stand_in_rows", {"bad_every": 4}, ("val",))
    )
    return "stand-in"


def test_prepare_writes_shards_and_counts_every_skipped_row(tmp_path, stand_in):
    (tmp_path / "raw").mkdir()
    report = prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4)
    assert report["splits"]["val"] == {"rows": 10, "shards": 3, "skipped": 4, "reused": False}
    files = sorted((tmp_path / "out" / "val").glob("shard-*.parquet"))
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [4, 4, 2]
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())["val"]
    assert [s["sample_id"] for s in skipped] == ["bad-val-0", "bad-val-4", "bad-val-8", "task-0"]
    assert skipped[0]["reason"] == "unreadable image" and "duplicate" in skipped[-1]["reason"]
    assert not list((tmp_path / "out" / "val").glob(".*tmp*"))  # no temporary files left


def test_prepare_is_idempotent_and_redoes_a_split_when_options_change(tmp_path, stand_in):
    (tmp_path / "raw").mkdir()
    prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4)
    first = {f: f.stat().st_mtime_ns for f in (tmp_path / "out" / "val").iterdir()}
    again = prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4)
    assert again["splits"]["val"]["reused"] and again["splits"]["val"]["skipped"] == 4
    assert {f: f.stat().st_mtime_ns for f in (tmp_path / "out" / "val").iterdir()} == first
    changed = prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4, options={"n": 5})
    assert changed["splits"]["val"] == {"rows": 5, "shards": 2, "skipped": 3, "reused": False}
    assert len(list((tmp_path / "out" / "val").glob("shard-*.parquet"))) == 2  # stale shards removed


def test_a_missing_shard_makes_prepare_convert_again(tmp_path, stand_in):
    (tmp_path / "raw").mkdir()
    prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4)
    (tmp_path / "out" / "val" / "shard-00001.parquet").unlink()
    assert not prep.prepare(stand_in, tmp_path / "raw", tmp_path / "out", shard_size=4)["splits"]["val"][
        "reused"
    ]


def test_a_reader_row_with_wrong_columns_stops_with_its_id(tmp_path, monkeypatch):
    monkeypatch.setitem(prep.READERS, "broken", (f"{__name__}:broken_rows", {}, ("val",)))
    with pytest.raises(ValueError, match="val/x-1: reader row has columns"):
        prep.prepare("broken", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "val" / "manifest.json").exists()


def broken_rows(src, split):
    yield {"sample_id": "x-1", "image": b""}


def test_cli_prepares_shapes_without_src_and_reports(tmp_path, capsys):
    argv = [
        "shapes",
        "--out",
        str(tmp_path),
        "--shard-size",
        "3",
        "--option",
        "length=5",
        "--option",
        "size=32",
    ]
    assert prepare_main(argv) == 0
    assert "val: 5 rows in 2 shards (written); 0 skipped" in capsys.readouterr().out
    assert prepare_main(argv) == 0
    assert "test: 5 rows in 2 shards (up to date)" in capsys.readouterr().out


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert prepare_main(["phrasecut", "--out", str(tmp_path)]) == 2
    assert "needs --src" in capsys.readouterr().err
    assert prepare_main(["phrasecut", "--src", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prepare_main(["imagenet", "--out", str(tmp_path)])


def test_an_unknown_reader_option_is_one_error_line(tmp_path, capsys):
    from fixture_data.raw_formats import write_pascal5i

    write_pascal5i(tmp_path / "raw")
    argv = ["pascal5i", "--src", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--option", "bogus=1"]
    assert prepare_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("clipseg prepare: error: --option bogus")
        and "fold" in err
        and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "out").exists()
