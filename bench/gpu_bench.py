"""Can the loader feed a GPU? The paper's training step fed by the real loader and from memory (``make bench-gpu``).

Prints, on the GPU when there is one (else the CPU, with a smaller batch and fewer steps):

* training samples/s of the paper's step (frozen ViT-B/16 with random weights, rd64, layers (3, 7, 9),
  352², BCE, AdamW; bf16-mixed on a GPU, fp32 on a CPU), fed (a) by the real training loader
  (``PhraseCutDataModule``, PhraseCut+ policy, ``--workers`` workers) on synthetic shards, and (b) by
  one batch already on the device: the ratio a/b is the loader gap (1.0 = the loader keeps up);
* inference images/s with N = 1 and N = 8 text prompts per image (backbone once, decoder per prompt);
* peak GPU memory of each part.

Under 5 minutes on one GPU. ``--quick`` runs fewer steps.

    python bench/gpu_bench.py [--batch 64] [--workers 8] [--steps 10] [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch
from data_bench import SIZE, write_shards
from lightning.fabric.utilities.apply_func import move_data_to_device
from transformers import CLIPConfig

from clipseg.core.config import ClipSegConfig
from clipseg.core.prompts import TEMPLATES, tokenize_prompts
from clipseg.data.datamodules import PhraseCutDataModule
from clipseg.training.module import ClipSegModule


def paper_module(corpus: list[str]) -> ClipSegModule:
    """The paper's model (frozen ViT-B/16 towers with random weights, rd64, layers 3, 7, 9) and training loss."""
    torch.manual_seed(0)
    backbone = CLIPConfig(vision_config={"patch_size": 16}).to_dict()
    config = ClipSegConfig(backbone=backbone, extract_layers=(3, 7, 9), reduce_dim=64, image_size=SIZE)
    return ClipSegModule(config=config, tokenizer_corpus=corpus)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """As Lightning transfers a batch (the training crops are ``Ragged`` named tuples of tensors)."""
    return move_data_to_device(batch, device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16-mixed on a GPU (what `clipseg fit` picks there), plain fp32 on a CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def rate(run: Callable[[], int], device: torch.device, *, warmup: int, steps: int) -> float:
    """Items/s of ``steps`` calls of ``run`` (each returns how many items it processed), after ``warmup``."""
    for _ in range(warmup):
        run()
    synchronize(device)
    start, done = time.perf_counter(), 0
    for _ in range(steps):
        done += run()
    synchronize(device)
    return done / (time.perf_counter() - start)


def peak_memory(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a on CPU"
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return f"{peak:.1f} GiB"


def endless(loader: torch.utils.data.DataLoader) -> Iterator[dict[str, Any]]:
    """The loader's batches, epoch after epoch (persistent workers are kept between epochs)."""
    while True:
        yield from loader


def training_rates(
    module: ClipSegModule, data: PhraseCutDataModule, device: torch.device, *, warmup: int, steps: int
) -> tuple[float, float]:
    """(samples/s fed by the loader, samples/s fed by one batch already on the device)."""
    model = module.model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step(batch: dict[str, Any]) -> int:
        with autocast(device):
            loss, _, _ = module.model_step(batch, auxiliary=False)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return len(batch["sample_id"])

    batches = endless(data.train_dataloader())

    def from_loader() -> int:  # as Lightning does: transfer, then the data module's hook (device finish)
        return step(data.on_after_batch_transfer(to_device(next(batches), device), 0))

    fed = rate(from_loader, device, warmup=warmup, steps=steps)
    resident = data.on_after_batch_transfer(to_device(next(batches), device), 0)
    in_memory = rate(lambda: step(resident), device, warmup=warmup, steps=steps)
    return fed, in_memory


def inference_rate(
    module: ClipSegModule, device: torch.device, *, images: int, prompts: int, warmup: int, steps: int
) -> float:
    """Images/s of segmenting ``images`` images per call, each with the same ``prompts`` text prompts."""
    model = module.model.to(device).eval()
    phrases = [TEMPLATES[0].format(f"thing {i}") for i in range(prompts)]
    tokens = tokenize_prompts(module.tokenizer, phrases, model.max_text_tokens, return_tensors="pt")
    pixels = torch.randn(images, 3, SIZE, SIZE, device=device)

    def segment() -> int:
        with torch.inference_mode(), autocast(device):
            conditionals = model.encode_text(**{k: v.to(device) for k, v in tokens.items()})  # N x D
            model(pixels, conditionals)  # B x N x H x W logits
        return images

    return rate(segment, device, warmup=warmup, steps=steps)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, help="training batch (default 64 on a GPU, 4 on a CPU)")
    parser.add_argument("--workers", type=int, help="loader workers (default: CPU cores - 1, at most 12)")
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 10 GPU, 2 CPU)")
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (64 if gpu else 4)
    workers = args.workers if args.workers is not None else max(1, min((os.cpu_count() or 2) - 1, 12))
    steps = args.steps or (10 if gpu else 2)
    if args.quick:
        steps = max(1, steps // 2)
    warmup = 3 if gpu else 1
    where = torch.cuda.get_device_name(device) if gpu else f"CPU ({os.cpu_count()} cores)"
    precision = "bf16-mixed" if gpu else "fp32"
    print(f"device: {where}; paper step: frozen ViT-B/16 (random weights), rd64, {SIZE}², {precision}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = max(8 * workers, min(batch * (warmup + steps + 1), 640))  # later epochs repeat the rows
        start = time.perf_counter()
        write_shards(Path(tmp), rows)
        print(f"data: {rows} synthetic PhraseCut+-style rows written in {time.perf_counter() - start:.0f}s")
        texts = pq.read_table(Path(tmp) / "train", columns=["text"]).column("text").to_pylist()
        corpus = sorted({word for text in [*TEMPLATES, *texts] for word in text.replace(".", " ").split()})
        module = paper_module([" ".join(corpus)])
        data = PhraseCutDataModule(
            data_dir=tmp,
            plus=True,
            image_size=SIZE,
            batch_size=batch,
            num_workers=workers,
            shuffle_buffer=64,
            finish_on_device=device.type != "cpu",  # as in a fit on that device
        )
        data.use_model_preprocessing(module.model.config.preprocessing)
        peak_memory(device)
        fed, in_memory = training_rates(module, data, device, warmup=warmup, steps=steps)
        print(f"training, batch {batch}, {workers} loader worker(s):")
        print(f"  fed by the loader:     {fed:8.1f} samples/s")
        print(f"  fed from memory:       {in_memory:8.1f} samples/s")
        print(
            f"  loader gap: {fed / in_memory:.2f} (1.00 = the loader keeps up); peak memory {peak_memory(device)}"
        )
    images = 32 if gpu else 2
    print(f"inference, {images} images per call, text prompts:")
    for prompts in (1, 8):
        speed = inference_rate(module, device, images=images, prompts=prompts, warmup=warmup, steps=steps)
        print(f"  N = {prompts}: {speed:8.1f} images/s; peak memory {peak_memory(device)}")


if __name__ == "__main__":
    main()
