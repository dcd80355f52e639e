"""``make eval-all`` / ``clipseg eval-all --out results``: every local zoo model on every local benchmark.

Each (model, benchmark) pair runs the paper's protocol (``clipseg.training.evaluation.PROTOCOLS``) on the benchmark's
test split and lands in ``<out>/eval-all.json``; ``<out>/eval-all.md`` lays the numbers out like the
paper's tables with the paper's numbers beside them. A model whose weights are not on this machine,
or a benchmark whose data is not prepared, becomes a "skipped: reason" entry, never an error. The
shapes benchmark is generated, so a fresh checkout always evaluates at least shapes-tiny on it.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from clipseg.eval.benchmarks import BENCHMARKS, Benchmark
from clipseg.eval.report import add_fold_means, render_markdown
from clipseg.modeling.clipseg import ClipSeg
from clipseg.training.evaluation import make_evaluator

ModelLoader = Callable[[], tuple[ClipSeg, PreTrainedTokenizerBase]]


def _missing_hint(card: Any) -> str:
    """How to get a card's missing weights, naming a command or place that really provides them."""
    from clipseg.zoo.store import cache_dir

    if card.hf_repo is not None:
        return f"weights not on this machine (`clipseg zoo fetch {card.name}` downloads them)"
    return f"weights not on this machine (get {card.filename} from {card.source} into {cache_dir() / card.name}/)"


def zoo_models() -> tuple[dict[str, ModelLoader | str], dict[str, dict[str, float]]]:
    """Adapter to ``clipseg.zoo``: a loader per model whose weights are on this machine (else the reason
    it is skipped), and the paper's numbers per model (``<benchmark>/<metric>`` → value, from the cards)."""
    from clipseg.zoo import cards, list_models
    from clipseg.zoo.store import local_file

    known = cards()
    models: dict[str, ModelLoader | str] = {
        name: model_loader(name) if local_file(known[name]) else _missing_hint(known[name])
        for name in list_models()
    }
    return models, {name: dict(card.paper) for name, card in known.items()}


def model_loader(name_or_path: str) -> ModelLoader:
    """Loads a zoo name or model file (``clipseg.load_model``), or a ``.ckpt`` of ``clipseg fit``."""

    def load() -> tuple[ClipSeg, PreTrainedTokenizerBase]:
        if name_or_path.endswith(".ckpt"):
            from clipseg.training.pack import load_checkpoint_model

            return load_checkpoint_model(name_or_path)
        from clipseg.zoo import load_weights

        return load_weights(name_or_path)

    return load


def select_models(
    available: Mapping[str, ModelLoader | str], requested: Sequence[str]
) -> dict[str, ModelLoader | str]:
    """The ``--models`` entries: zoo names (loader or skip reason) and model files; anything else is an error."""
    chosen: dict[str, ModelLoader | str] = {}
    for entry in requested:
        if entry in available:
            chosen[entry] = available[entry]
        elif Path(entry).exists():
            chosen[entry] = model_loader(entry)
        else:
            raise ValueError(
                f"--models {entry!r}: not a zoo model ({', '.join(available)}) and no such file; "
                "pass a zoo name, a model file (.safetensors, .pth, folder) or a `clipseg fit` .ckpt"
            )
    return chosen


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


def evaluate(
    model: ClipSeg,
    tokenizer: PreTrainedTokenizerBase,
    benchmark: Benchmark,
    *,
    data_root: Path,
    batch_size: int,
    num_workers: int,
    limit: int | None,
    label: str,
) -> dict[str, float]:
    """The metrics of ``model`` on ``benchmark``'s test split (at most ``limit`` batches), with a progress bar."""
    device = next(model.parameters()).device
    common = {"image_size": model.config.image_size, "batch_size": batch_size, "num_workers": num_workers}
    datamodule = benchmark.datamodule(data_root, common)
    evaluator = make_evaluator(benchmark.protocol, datamodule).to(device)
    loader = datamodule.test_dataloader()
    total = limit if limit is not None else (len(loader) if hasattr(loader.dataset, "__len__") else None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        for index, batch in enumerate(tqdm(loader, desc=label, total=total, unit="batch")):
            if limit is not None and index >= limit:
                break
            evaluator.step(model, tokenizer, _to_device(batch, device))
        return {k: float(v) for k, v in evaluator.compute().items()}


def run_eval_all(
    models: Mapping[str, ModelLoader | str],
    *,
    data_root: Path,
    benchmarks: Sequence[Benchmark] = BENCHMARKS,
    batch_size: int = 8,
    num_workers: int = 2,
    limit: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate each model (a loader, or the reason it is unavailable) on each benchmark with data.

    Returns ``{"models": {name: status}, "benchmarks": {name: status}, "results": {model: {benchmark: run}}}``
    where a status is "ok" or "skipped: reason" and a run ``{"status": "ok", "metrics", "seconds"}``.
    """
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    missing = {b.name: b.missing_data(data_root) for b in benchmarks}
    report: dict[str, Any] = {
        "models": {},
        "benchmarks": {name: f"skipped: {why}" if why else "ok" for name, why in missing.items()},
        "results": {},
    }
    for name, load in models.items():
        if isinstance(load, str):
            report["models"][name] = f"skipped: {load}"
            continue
        try:
            model, tokenizer = load()
        except Exception as err:  # a model that cannot load is reported, never fatal
            report["models"][name] = f"skipped: cannot load: {str(err).splitlines()[0]}"
            continue
        report["models"][name] = "ok"
        model = model.to(target).eval()
        runs = report["results"].setdefault(name, {})
        for bench in (b for b in benchmarks if missing[b.name] is None):
            start = time.perf_counter()
            try:
                metrics = evaluate(
                    model,
                    tokenizer,
                    bench,
                    data_root=data_root,
                    batch_size=batch_size,
                    num_workers=num_workers,
                    limit=limit,
                    label=f"{name} × {bench.name}",
                )
            except Exception as err:  # e.g. corrupt shards: report it and go on with the other pairs
                traceback.print_exc()
                runs[bench.name] = {"status": "failed", "reason": f"{type(err).__name__}: {err}"}
                continue
            runs[bench.name] = {
                "status": "ok",
                "metrics": metrics,
                "seconds": round(time.perf_counter() - start, 1),
            }
    add_fold_means(report["results"])
    return report


def write_report(
    report: dict[str, Any], paper: dict[str, dict[str, float]], out: Path, header: list[str]
) -> Path:
    """Write ``out/eval-all.json`` and ``out/eval-all.md`` for a ``run_eval_all`` report; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval-all.json").write_text(json.dumps({"header": header, **report, "paper": paper}, indent=2))
    markdown = out / "eval-all.md"
    text = render_markdown(
        report["results"],
        models=report["models"],
        benchmarks=report["benchmarks"],
        paper=paper,
        header=header,
    )
    markdown.write_text(text)
    return markdown
