"""Loader throughput: streamed PhraseCut+-style samples/s per DataLoader worker at 352 x 352.

Builds a synthetic shard set in a temporary folder (shapes scenes cropped to 500 x 375 like typical
Visual Genome photos, JPEG images, PNG masks, a support image + mask per row), then streams it through
the PhraseCut+ policy (negatives p = 0.2, visual prompts, text weights) and the training transforms
(foreground crop, flip, prompt crop, collate) with 0 workers (main process) and 1 worker. The workers
send uint8 crops; the data module resizes, prompts and normalizes them after the transfer, on the GPU
(``device_finish.finish_batch``): that last part is timed on this CPU too and printed apart, since on a
GPU it runs beside the workers, not in them (``make bench-gpu`` measures it there, in the step).
Compare with the model's training steps/s x batch size: one worker delivers the printed rate.

The ceiling on this machine is decoding the same bytes (image, mask, support image, support mask of
every row) and nothing else: the loader rate is printed as a ratio to that raw decoding rate, measured
in the same run, so the number holds on a busy machine too. Two ceilings are printed: decoding with the
loader's own decoders (``streaming.decode_image``: OpenCV for plain JPEGs, PIL otherwise; the honest
one, as fast as the loader can decode) and with PIL alone (the measure the issue started from). Every
row of the bench has a support pair and the PhraseCut+ policy decodes one for every sample (its own or,
for a negative, another row's), so all four fields are bytes the loader needs.

It also times the paper's training step (ViT-B/16 frozen, rd64, layers (3, 7, 9), fp32) on the same
machine and prints how many workers keep up with it.

    python bench/data_bench.py [--rows 160] [--batch 16] [--repeats 3] [--quick] [--loader-only]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from torch.utils.data import DataLoader

from clipseg.core.config import PreprocessConfig
from clipseg.data.device_finish import finish_batch
from clipseg.data.sample_io import encode_png, make_row
from clipseg.data.schema import SHARD_FEATURES
from clipseg.data.shapes.scenes import ShapesConfig, draw_sample
from clipseg.data.streaming import PromptPolicy, ShardStream, decode_image
from clipseg.data.transforms import SampleTransform, collate

SIZE, WIDTH, HEIGHT = 352, 500, 375


def jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_shards(out: Path, rows: int, per_shard: int = 40) -> None:
    """``rows`` PhraseCut+-like rows (every one with a support) in ``out/train/shard-*.parquet``."""
    config = ShapesConfig(size=WIDTH, negative_prob=0.0, visual_prob=1.0)
    batch = []
    (out / "train").mkdir(parents=True)
    for i in range(rows):
        sample, (support, support_mask) = draw_sample(0, i, split="train", config=config)
        batch.append(
            make_row(
                sample["sample_id"],
                jpeg(sample["image"][:HEIGHT]),
                encode_png(sample["mask"][:HEIGHT] > 0),
                text=sample["text"],
                support_image=jpeg(support[:HEIGHT]),
                support_mask=encode_png(support_mask[:HEIGHT] > 0),
                meta={"image_id": i},
            )
        )
        if len(batch) == per_shard or i == rows - 1:
            table = pa.Table.from_pylist(batch, schema=SHARD_FEATURES.arrow_schema)
            pq.write_table(table, out / "train" / f"shard-{i // per_shard:05d}.parquet", row_group_size=64)
            batch = []


def pil_decode(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert(mode))


DECODERS = {"loader's decoders": decode_image, "PIL": pil_decode}


def raw_decodes_per_second(rows: list[dict], decode: Callable[[bytes, str], np.ndarray]) -> float:
    """Rows/s of decoding each row's image, mask, support image and support mask with ``decode``, nothing else."""
    start = time.perf_counter()
    for row in rows:
        for key, mode in (("image", "RGB"), ("mask", "L"), ("support_image", "RGB"), ("support_mask", "L")):
            decode(row[key], mode)
    return len(rows) / (time.perf_counter() - start)


def loader_over_raw(source: Path, workers: int, batch_size: int) -> tuple[float, dict[str, float]]:
    """(samples/s of one loader pass, its ratio to raw decoding timed just before and just after it, per decoder)."""
    rows = pq.read_table(source / "train", columns=["image", "mask", "support_image", "support_mask"])
    rows = rows.to_pylist()
    before = {name: raw_decodes_per_second(rows, decode) for name, decode in DECODERS.items()}
    rate = samples_per_second(source, workers, batch_size)
    after = {name: raw_decodes_per_second(rows, decode) for name, decode in DECODERS.items()}
    return rate, {name: rate / ((before[name] + after[name]) / 2) for name in DECODERS}


def training_loader(source: Path, workers: int, batch_size: int) -> DataLoader:
    """The data module's PhraseCut+ training loader at ``SIZE``² over the shards in ``source``."""
    stream = ShardStream(
        source=str(source),
        split="train",
        policy=PromptPolicy(negative_prob=0.2, visual=True),
        # as the data module's training loader: uint8 crops, finished after the transfer to the GPU
        transform=SampleTransform(
            preprocessing=PreprocessConfig(size=SIZE), train=True, finish_on_device=True
        ),
        shuffle_buffer=64,
        buffer_input_shards=1,  # no 5 s shutdown pause of interleaved HF streams inside the timing
        train=True,
    )
    return DataLoader(stream, batch_size=batch_size, num_workers=workers, collate_fn=collate)


def samples_per_second(source: Path, workers: int, batch_size: int) -> float:
    """One pass over the shards; the rate after the first batch (startup excluded)."""
    seen, start, last = 0, None, None
    for batch in training_loader(source, workers, batch_size):
        now = time.perf_counter()
        if start is None:
            start = now
        else:
            seen += len(batch["sample_id"])
        last = now
    return seen / (last - start)


def finish_ms_per_sample(source: Path, batch_size: int) -> float:
    """Milliseconds a sample of ``finish_batch`` (resize, prompt, normalize) takes on this CPU, one thread."""
    batches = list(training_loader(source, 0, batch_size))
    start = time.perf_counter()
    for batch in batches:
        finish_batch(batch, PreprocessConfig(size=SIZE))
    return (time.perf_counter() - start) * 1e3 / sum(len(b["sample_id"]) for b in batches)


def training_samples_per_second(batch: int, repeats: int) -> float:
    """Samples/s of one ``ClipSegModule``-style step (BCE, backward through the decoder) at 352², fp32."""
    import torch
    import torch.nn.functional as F
    from transformers import CLIPConfig

    from clipseg.modeling import ClipSeg, ClipSegConfig

    torch.manual_seed(0)
    backbone = CLIPConfig(vision_config={"patch_size": 16}).to_dict()  # ViT-B/16 towers, random weights
    model = ClipSeg(ClipSegConfig(backbone=backbone, extract_layers=(3, 7, 9), image_size=SIZE)).train()
    images = torch.randn(batch, 3, SIZE, SIZE)
    ids = torch.randint(0, 49000, (batch, 12))
    best = float("inf")
    for _ in range(repeats + 1):  # the first step warms up
        start = time.perf_counter()
        conditionals = model.encode_text(ids)[:, None]
        logits = model(images, conditionals)
        F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)).backward()
        best = min(best, time.perf_counter() - start)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=160, help="rows in the synthetic shard set")
    parser.add_argument("--batch", type=int, default=16, help="DataLoader batch size")
    parser.add_argument("--quick", action="store_true", help="fewer rows and one timed training step")
    parser.add_argument("--repeats", type=int, default=3, help="loader passes per setting (median printed)")
    parser.add_argument("--loader-only", action="store_true", help="skip timing the model's training step")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = min(args.rows, 64), 1
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_shards(Path(tmp), args.rows)
        print(
            f"data: {args.rows} PhraseCut+-style rows ({WIDTH}x{HEIGHT} JPEG) written in {time.perf_counter() - start:.1f}s"
        )
        print(f"streamed -> PhraseCut+ policy -> train transforms at {SIZE}x{SIZE}, batch {args.batch}")
        print(
            "  ratio = loader samples/s / raw decoding rows/s (image, mask, support image, support mask:"
            " the ceiling), raw timed around each pass, with the loader's decoders and with PIL alone"
        )
        rates = {0: [], 1: []}
        ratios = {(workers, name): [] for workers in (0, 1) for name in DECODERS}
        for _ in range(args.repeats):
            for workers in (0, 1):
                rate, ratio = loader_over_raw(Path(tmp), workers, args.batch)
                rates[workers].append(rate)
                for name, value in ratio.items():
                    ratios[workers, name].append(value)
        for workers in (0, 1):
            where = "main process" if workers == 0 else "1 worker"
            rate = np.median(rates[workers])
            print(f"  {where:>12}: {rate:6.1f} samples/s  = {rate / 64:.2f} steps/s at batch 64")
            for name in DECODERS:
                values = ratios[workers, name]
                print(
                    f"  {'':>12}  = {np.median(values):.2f} x raw decoding with {name} (median of"
                    f" {args.repeats}: {', '.join(f'{r:.2f}' for r in values)})"
                )
        rates = {workers: float(np.median(r)) for workers, r in rates.items()}
        finish = finish_ms_per_sample(Path(tmp), args.batch)
        print(
            f"  device finish (resize, prompt, normalize) on this CPU: {finish:.1f} ms a sample, in the"
            " main process after the transfer; on a GPU it is part of the step (make bench-gpu)"
        )
    if args.loader_only:
        return
    model_rate = training_samples_per_second(batch=4, repeats=1 if args.quick else 2)
    print(f"model: ViT-B/16 rd64 training step at {SIZE}x{SIZE}, fp32, this CPU: {model_rate:.1f} samples/s")
    need = model_rate / rates[1]
    print(
        f"loader/model ratio per worker: {rates[1] / model_rate:.1f}x -> {max(1, int(np.ceil(need)))} worker(s) keep up here"
    )


if __name__ == "__main__":
    main()
