"""``results/eval-all.md``: one table per paper table, our numbers with the paper's beside them."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any

# results[model][benchmark] = {"status": "ok", "metrics": {...}} or {"status": "skipped", "reason": ...}
Results = dict[str, dict[str, dict[str, Any]]]
FOLD_MEANS = {"pascal5i": 4, "coco20i": 4}  # the paper reports one-shot numbers as the mean over the folds


@dataclass(frozen=True)
class Column:
    """One table column: ``metric`` of ``benchmark``, shown as ``value * scale`` with ``digits`` decimals."""

    benchmark: str
    metric: str
    label: str
    scale: float = 100.0
    digits: int = 1


def _oneshot(name: str) -> tuple[Column, ...]:
    folds = tuple(Column(f"{name}-fold{f}", "miou", f"mIoU fold {f}") for f in range(FOLD_MEANS[name]))
    return (Column(name, "miou", "mIoU"), Column(name, "fbiou", "FB-IoU"), Column(name, "ap", "AP"), *folds)


SECTIONS: tuple[tuple[str, tuple[Column, ...]], ...] = (
    (
        "PhraseCut test: referring expression segmentation (paper Table 1)",
        (
            Column("phrasecut", "miou_0.3", "mIoU"),
            Column("phrasecut", "fgiou_0.3", "IoU_FG"),
            Column("phrasecut", "ap", "AP"),
        ),
    ),
    ("PASCAL-5i one-shot, mean over folds (paper Table 2)", _oneshot("pascal5i")),
    ("COCO-20i one-shot, mean over folds (paper Table 2)", _oneshot("coco20i")),
    (
        "PASCAL VOC zero-shot (paper Table 3)",
        tuple(
            Column(f"pascal-zeroshot-{n}", metric, f"{label} ({n} unseen)")
            for n in (4, 10)
            for metric, label in (("miou_seen", "mIoU_S"), ("miou_unseen", "mIoU_U"), ("harmonic", "hIoU"))
        ),
    ),
    (
        "RefMatte: referring image matting (keyword, expression, RW100)",
        tuple(
            Column(f"refmatte-{s}", metric, f"{metric.upper()} {s}", scale=1.0, digits=digits)
            for s in ("keyword", "expression", "rw100")
            for metric, digits in (("sad", 2), ("mse", 4), ("mad", 4))
        ),
    ),
    (
        "shapes test (procedural, this project)",
        (
            Column("shapes", "miou_0.5", "mIoU@0.5"),
            Column("shapes", "fgiou_0.5", "IoU_FG@0.5"),
            Column("shapes", "ap", "AP"),
        ),
    ),
)


# Where the numbers come from and what is not known about them, printed with the table.
PUBLISHED_REFMATTE_SOURCE = (
    'CLIPSeg (ViT-B/16) on RefMatte as published (Li, Zhang, Tao, "Referring Image Matting", CVPR 2023, '
    "arXiv 2206.05149; listed for CLIPSeg (ViT-B/16) on Papers with Code). The paper reports three groups "
    '(its keyword-based, expression-based and RW100 evaluations) and an "(E)" variant of each; which group '
    'is which setting and what "(E)" measures could not be confirmed from searchable text, so the groups '
    "are shown as published, in the order listed."
)
PUBLISHED_REFMATTE: tuple[tuple[str, dict[str, float]], ...] = (
    (
        "group 1",
        {"mad": 0.0394, "mse": 0.0358, "sad": 69.13, "mad_e": 0.0419, "mse_e": 0.0381, "sad_e": 73.53},
    ),
    (
        "group 2",
        {"mad": 0.0101, "mse": 0.0064, "sad": 17.75, "mad_e": 0.0106, "mse_e": 0.0067, "sad_e": 18.69},
    ),
    (
        "group 3",
        {"mad": 0.1222, "mse": 0.1178, "sad": 211.86, "mad_e": 0.1282, "mse_e": 0.1236, "sad_e": 222.37},
    ),
)


def published_refmatte_table() -> list[str]:
    """Markdown lines: the published CLIPSeg (ViT-B/16) RefMatte errors, shown whether or not RefMatte ran here."""
    keys = ("mad", "mse", "sad", "mad_e", "mse_e", "sad_e")
    header = ("MAD", "MSE", "SAD", "MAD (E)", "MSE (E)", "SAD (E)")
    return [
        PUBLISHED_REFMATTE_SOURCE,
        "",
        "| CLIPSeg (ViT-B/16), as published | " + " | ".join(header) + " |",
        "|---" * (len(keys) + 1) + "|",
        *(
            f"| {group} | " + " | ".join(f"{row[k]:g}" for k in keys) + " |"
            for group, row in PUBLISHED_REFMATTE
        ),
        "",
    ]


# Tables of published numbers that follow a section whatever ran (keyed by section title).
REFERENCES = {"RefMatte: referring image matting (keyword, expression, RW100)": published_refmatte_table}


def add_fold_means(results: Results) -> None:
    """Add ``pascal5i`` / ``coco20i`` entries: the mean over folds, only when every fold was evaluated."""
    for runs in results.values():
        for name, folds in FOLD_MEANS.items():
            done = [runs.get(f"{name}-fold{f}", {}) for f in range(folds)]
            if all(r.get("status") == "ok" for r in done):
                keys = set.intersection(*(set(r["metrics"]) for r in done))
                runs[name] = {
                    "status": "ok",
                    "metrics": {k: fmean(r["metrics"][k] for r in done) for k in sorted(keys)},
                }


def _cell(run: dict[str, Any], column: Column, paper: dict[str, float]) -> str:
    if run.get("status") != "ok" or column.metric not in run["metrics"]:
        return "–"
    text = f"{run['metrics'][column.metric] * column.scale:.{column.digits}f}"
    reported = paper.get(f"{column.benchmark}/{column.metric}")
    return text if reported is None else f"{text} (paper {reported * column.scale:.{column.digits}f})"


def _status_table(title: str, statuses: dict[str, str]) -> list[str]:
    return [
        f"## {title}",
        "",
        "| name | status |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in statuses.items()),
        "",
    ]


def render_markdown(
    results: Results,
    *,
    models: dict[str, str],
    benchmarks: dict[str, str],
    paper: dict[str, dict[str, float]],
    header: list[str],
) -> str:
    """The report: ``header``, model and benchmark status ("ok" / "skipped: reason"), one table per paper table.

    A table has a row per evaluated model; "–" marks a benchmark that did not run (see its status).
    """
    lines = [
        "# eval-all",
        "",
        *header,
        "",
        *_status_table("Models", models),
        *_status_table("Benchmarks", benchmarks),
    ]
    for title, columns in SECTIONS:
        lines += [f"## {title}", ""]
        ran = [
            m
            for m, runs in results.items()
            if any(runs.get(c.benchmark, {}).get("status") == "ok" for c in columns)
        ]
        reference = REFERENCES[title]() if title in REFERENCES else []
        if not ran:
            lines += ["skipped: none of its benchmarks ran (see Benchmarks and Models above)", "", *reference]
            continue
        lines += [
            "| model | " + " | ".join(c.label for c in columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for model in ran:
            cells = (_cell(results[model].get(c.benchmark, {}), c, paper.get(model, {})) for c in columns)
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines += ["", *reference]
    failed = [
        f"- {model} × {bench}: {run['reason']}"
        for model, runs in results.items()
        for bench, run in runs.items()
        if run.get("status") != "ok"
    ]
    return "\n".join([*lines, *(["## Failed", "", *failed, ""] if failed else [])])
