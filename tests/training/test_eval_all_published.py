"""``make eval-all`` shows the published CLIPSeg (ViT-B/16) RefMatte errors, with or without RefMatte data."""

from __future__ import annotations

from clipseg.cli import eval_all as eval_all_cli
from clipseg.eval import eval_all
from clipseg.eval.report import PUBLISHED_REFMATTE, render_markdown

ROWS = (
    "| group 1 | 0.0394 | 0.0358 | 69.13 | 0.0419 | 0.0381 | 73.53 |",
    "| group 2 | 0.0101 | 0.0064 | 17.75 | 0.0106 | 0.0067 | 18.69 |",
    "| group 3 | 0.1222 | 0.1178 | 211.86 | 0.1282 | 0.1236 | 222.37 |",
)


def _refmatte_section(markdown: str) -> str:
    start = markdown.index("## RefMatte")
    return markdown[start : markdown.index("## ", start + 3)]


def test_published_numbers_follow_the_refmatte_section_when_nothing_ran():
    section = _refmatte_section(render_markdown({}, models={}, benchmarks={}, paper={}, header=[]))
    assert "skipped: none of its benchmarks ran" in section
    assert "as published" in section and "arXiv 2206.05149" in section
    for row in ROWS:
        assert row in section
    assert len(PUBLISHED_REFMATTE) == 3


def test_published_numbers_sit_beside_our_refmatte_numbers():
    results = {
        "tiny": {"refmatte-keyword": {"status": "ok", "metrics": {"sad": 80.0, "mse": 0.04, "mad": 0.05}}}
    }
    section = _refmatte_section(
        render_markdown(results, models={"tiny": "ok"}, benchmarks={}, paper={}, header=[])
    )
    ours = section.index("| tiny | 80.00 | 0.0400 | 0.0500 |")
    assert all(section.index(row) > ours for row in ROWS)


def test_eval_all_prints_them_without_refmatte_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(eval_all, "zoo_models", lambda: ({"absent": "weights not on this machine"}, {}))
    out = tmp_path / "results"
    assert eval_all_cli.main(["--out", str(out), "--data-root", str(tmp_path / "no-data")]) == 0
    printed = capsys.readouterr().out
    for row in ROWS:
        assert row in printed
        assert row in (out / "eval-all.md").read_text()
