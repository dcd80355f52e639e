"""All four metrics: exact under DDP (2 gloo processes on CPU), independent of batching, fixed-size state,
forward / reset, logits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import metrics_reference as ref
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from net_helpers import free_port
from torchmetrics import Metric

from clipseg.metrics import FewShotMetrics, MattingErrors, ReferringSegMetrics, ZeroShotMetrics

Batch = dict[str, torch.Tensor]

# name -> (metric class with its arguments, the update arguments of a batch)
METRICS: dict[str, tuple[Callable[..., Metric], Callable[[Batch], tuple[torch.Tensor, ...]]]] = {
    "referring": (partial(ReferringSegMetrics, thresholds=(0.3, 0.5)), lambda b: (b["probs"], b["target"])),
    "fewshot": (partial(FewShotMetrics, num_classes=4), lambda b: (b["probs"], b["target"], b["class_ids"])),
    "zeroshot": (
        partial(ZeroShotMetrics, 5, seen=(0, 1, 2), unseen=(3, 4)),
        lambda b: (b["pred_labels"], b["labels"]),
    ),
    "matting": (MattingErrors, lambda b: (b["probs"], b["alpha"], b["region"])),
}


def _dataset(num_batches: int = 6, batch: int = 3, size: int = 12) -> list[Batch]:
    gen = torch.Generator().manual_seed(0)

    def rand() -> torch.Tensor:
        return torch.rand(batch, size, size, generator=gen)

    batches = []
    for _ in range(num_batches):
        logits = 4 * torch.randn(batch, size, size, generator=gen)
        probs = logits.sigmoid()
        labels = torch.randint(0, 5, (batch, size, size), generator=gen)
        labels[rand() < 0.1] = 255
        batches.append(
            {
                "logits": logits,
                "probs": probs,
                "target": (probs + 0.5 * rand()) > 0.8,
                "class_ids": torch.randint(0, 4, (batch,), generator=gen),
                "labels": labels,
                "pred_labels": torch.where(rand() < 0.5, labels.clamp(max=4), 0),
                "alpha": (probs + 0.3 * rand()).clamp(0, 1),
                "region": rand() < 0.7,
            }
        )
    return batches


def _evaluate(batches: list[Batch], names: Iterable[str] = METRICS) -> dict[str, dict[str, torch.Tensor]]:
    results = {}
    for name in names:
        make, args = METRICS[name]
        metric = make()
        for batch in batches:
            metric.update(*args(batch))
        results[name] = metric.compute()
    return results


def _assert_identical(got: dict[str, dict[str, torch.Tensor]], expected: dict[str, dict[str, torch.Tensor]]):
    assert got.keys() == expected.keys()
    for name in expected:
        ref.assert_identical(got[name], expected[name])


def _worker(rank: int, world_size: int, port: int, out_dir: Path) -> None:
    torch.set_num_threads(1)  # first: no OpenMP thread pool is inherited across fork
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        # interleaved halves: the order of updates differs from the single process too
        torch.save(_evaluate(_dataset()[rank::world_size]), out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
@pytest.mark.timeout(120)
def test_ddp_two_processes_equal_single_process_exactly(tmp_path):
    world_size = 2
    # fork, not spawn: the children inherit the imported modules (importing torchmetrics takes seconds)
    mp.start_processes(
        _worker, args=(world_size, free_port(), tmp_path), nprocs=world_size, start_method="fork"
    )
    expected = _evaluate(_dataset())
    for rank in range(world_size):
        _assert_identical(torch.load(tmp_path / f"rank{rank}.pt"), expected)


def test_batching_and_order_do_not_change_the_result():
    batches = _dataset()
    merged = {key: torch.cat([b[key] for b in batches[::-1]]) for key in batches[0]}
    _assert_identical(_evaluate([merged]), _evaluate(batches))


@pytest.mark.parametrize("name", METRICS)
def test_state_does_not_grow_with_updates(name):
    make, args = METRICS[name]
    metric = make()
    batches = _dataset(num_batches=2)
    metric.update(*args(batches[0]))
    shapes = {key: value.shape for key, value in metric.metric_state.items()}
    for batch in batches * 5:
        metric.update(*args(batch))
    assert all(isinstance(value, torch.Tensor) for value in metric.metric_state.values())
    assert {key: value.shape for key, value in metric.metric_state.items()} == shapes


@pytest.mark.parametrize("name", METRICS)
def test_forward_returns_the_batch_value_and_accumulates(name):
    make, args = METRICS[name]
    batches = _dataset(num_batches=2)
    metric = make()
    batch_values = [metric(*args(batch)) for batch in batches]
    ref.assert_identical(batch_values[1], _evaluate(batches[1:], [name])[name])
    ref.assert_identical(metric.compute(), _evaluate(batches, [name])[name])
    metric.reset()
    metric.update(*args(batches[0]))
    ref.assert_identical(metric.compute(), _evaluate(batches[:1], [name])[name])


@pytest.mark.parametrize("name", ["referring", "fewshot", "matting"])
def test_logits_give_the_result_of_their_sigmoid(name):
    make, args = METRICS[name]
    from_logits, from_probs = make(from_logits=True), make()
    for batch in _dataset(num_batches=2):
        from_logits.update(*args({**batch, "probs": batch["logits"]}))
        from_probs.update(*args(batch))
    ref.assert_identical(from_logits.compute(), from_probs.compute())
