"""Draw the architecture page's three diagrams as plain SVG files (no JavaScript, no CDN, no graphviz).

    python docs/architecture_svg.py           # write docs/architecture-*.svg
    python docs/architecture_svg.py --check   # exit 1 when a committed SVG differs from what is declared here

The rooms and the two data flows are declared below as data; ``tests/unit/test_docs_site.py`` checks
that every package under ``src/clipseg`` has a box and that no package imports one drawn above it, so
the picture cannot drift from the code unnoticed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

DOCS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Room:
    """A package of ``clipseg``: its name, what it holds (lines of the box) and whether it is torch-free."""

    name: str
    holds: tuple[str, ...]
    torch_free: bool = False


# Top row first: a room may import rooms of its own row or of rows below it, never above.
LAYERS: tuple[tuple[Room, ...], ...] = (
    (Room("cli", ("every clipseg command,", "thin entry points")),),
    (Room("eval", ("quality, benchmarks,", "eval-all, report")),),
    (
        Room("training", ("LightningModule,", "losses, callbacks")),
        Room("export", ("ONNX graphs,", "int8 quantization")),
        Room("serve", ("web app, HTTP API,", "batcher, probes")),
        Room("ray", ("Ray Data engine", "(same writers)")),
    ),
    (
        Room("inference", ("Predictor, refine,", "postprocess, writers"), torch_free=True),
        Room("zoo", ("cards, store,", "load_model")),
        Room("backends", ("torch, onnx,", "sam")),
    ),
    (
        Room("modeling", ("ClipSeg: backbone,", "decoder, checkpoints")),
        Room("data", ("readers, prepare,", "streaming, shapes/")),
        Room("metrics", ("mIoU, FG-IoU, AP,", "matting errors")),
    ),
    (Room("core", ("config, images, prompts,", "preprocess, tokenizer"), torch_free=True),),
)

# (step, room that does it); each flow reads left to right, row after row.
INFERENCE_FLOW: tuple[tuple[str, str], ...] = (
    ("sources: files, folders, videos", "inference"),
    ("decode (threads)", "inference"),
    ("preprocess", "core"),
    ("encode the image once", "backends"),
    ("decode N prompts → low-res logits", "backends"),
    ("upsample / refine / tiles", "inference"),
    ("postprocess", "inference"),
    ("segment: presence, instances, labels", "inference"),
    ("writers: PNG, COCO, npz, video", "inference"),
)
TRAINING_FLOW: tuple[tuple[str, str], ...] = (
    ("raw dataset on disk", "data"),
    ("clipseg prepare → parquet shards", "data"),
    ("stream, split by rank and worker", "data"),
    ("augment → batch dict", "data"),
    ("backbone + decoder → logits", "modeling"),
    ("loss, metrics", "training"),
    ("logger, checkpoints", "training"),
    ("model file (safetensors)", "training"),
    ("quality, eval-all", "eval"),
)

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
INK, LINE, TORCH_FILL, FREE_FILL = "#1f2933", "#52606d", "#e4ecf7", "#e3f4e1"
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 168, 64, 14, 40, 16


def _box(x: float, y: float, w: float, lines: tuple[str, ...], fill: str, title: str) -> str:
    """One rounded box: ``title`` in bold, then ``lines`` (at most two) in small type."""
    parts = [
        f"<rect x='{x}' y='{y}' width='{w}' height='{BOX_H}' rx='8' fill='{fill}' stroke='{LINE}'/>",
        f"<text x='{x + w / 2}' y='{y + 20}' text-anchor='middle' font-weight='bold' font-size='14'"
        f" fill='{INK}'>{escape(title)}</text>",
    ]
    for i, line in enumerate(lines):
        parts.append(
            f"<text x='{x + w / 2}' y='{y + 38 + 15 * i}' text-anchor='middle' font-size='12'"
            f" fill='{INK}'>{escape(line)}</text>"
        )
    return "\n".join(parts)


def _arrow(points: list[tuple[float, float]]) -> str:
    """A polyline through ``points`` ending in an arrowhead."""
    path = " ".join(f"{x},{y}" for x, y in points)
    return (
        f"<polyline points='{path}' fill='none' stroke='{LINE}' stroke-width='1.6' marker-end='url(#head)'/>"
    )


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    """The SVG document around ``body``, with a title for screen readers and the arrowhead marker."""
    return "\n".join(
        [
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}'"
            f" height='{height}' {FONT} role='img'>",
            f"<title>{escape(title)}</title>",
            "<defs><marker id='head' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7'"
            f" orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{LINE}'/></marker></defs>",
            f"<rect width='{width}' height='{height}' fill='white'/>",
            *body,
            "</svg>\n",
        ]
    )


def rooms_svg() -> str:
    """The rooms in their import layers, top row importing downwards; torch-free rooms in green."""
    widest = max(len(row) for row in LAYERS)
    label_w = 64
    width = MARGIN * 2 + label_w + widest * BOX_W + (widest - 1) * GAP_X
    body = []
    for level, row in enumerate(LAYERS):
        y = MARGIN + level * (BOX_H + GAP_Y)
        row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
        x0 = MARGIN + label_w + (width - MARGIN * 2 - label_w - row_w) / 2
        body.append(
            f"<text x='{MARGIN}' y='{y + BOX_H / 2 + 5}' font-size='13' fill='{LINE}'>"
            f"layer {len(LAYERS) - 1 - level}</text>"
        )
        for i, room in enumerate(row):
            fill = FREE_FILL if room.torch_free else TORCH_FILL
            body.append(_box(x0 + i * (BOX_W + GAP_X), y, BOX_W, room.holds, fill, f"{room.name}/"))
        if level < len(LAYERS) - 1:
            mid = MARGIN + label_w + (width - MARGIN * 2 - label_w) / 2
            body.append(_arrow([(mid, y + BOX_H + 4), (mid, y + BOX_H + GAP_Y - 4)]))
    height = MARGIN * 2 + len(LAYERS) * (BOX_H + GAP_Y) - GAP_Y + 30
    legend_y = height - MARGIN - 8
    body += [
        f"<rect x='{MARGIN}' y='{legend_y - 12}' width='16' height='16' fill='{FREE_FILL}' stroke='{LINE}'/>",
        f"<text x='{MARGIN + 24}' y='{legend_y + 1}' font-size='12' fill='{INK}'>never imports torch</text>",
        f"<rect x='{MARGIN + 180}' y='{legend_y - 12}' width='16' height='16' fill='{TORCH_FILL}'"
        f" stroke='{LINE}'/>",
        f"<text x='{MARGIN + 204}' y='{legend_y + 1}' font-size='12' fill='{INK}'>may import torch</text>",
        f"<text x='{MARGIN + 360}' y='{legend_y + 1}' font-size='12' fill='{INK}'>"
        "arrows: imports point down only</text>",
    ]
    return _svg(width, height, body, "clipseg rooms and their one-way import order")


def flow_svg(steps: tuple[tuple[str, str], ...], title: str, per_row: int = 2) -> str:
    """``steps`` as boxes left to right, ``per_row`` a row, each labelled with the room that does it."""
    wide, gap = 330, 48  # room for the arrow between two boxes of a row
    width = MARGIN * 2 + per_row * wide + (per_row - 1) * gap
    rows = (len(steps) + per_row - 1) // per_row
    height = MARGIN * 2 + rows * (BOX_H + GAP_Y) - GAP_Y
    places = [
        (MARGIN + (i % per_row) * (wide + gap), MARGIN + (i // per_row) * (BOX_H + GAP_Y))
        for i in range(len(steps))
    ]
    body = []
    for (x, y), (step, room) in zip(places, steps):
        fill = FREE_FILL if room in ("core", "inference") else TORCH_FILL
        body.append(_box(x, y, wide, (f"{room}/",), fill, step))
    for (x, y), (nx, ny) in itertools.pairwise(places):
        if ny == y:  # same row: straight to the right
            body.append(_arrow([(x + wide + 2, y + BOX_H / 2), (nx - 2, ny + BOX_H / 2)]))
        else:  # next row: down, back to its first box, down into it
            turn = y + BOX_H + GAP_Y / 2
            body.append(_arrow([(x + wide / 2, y + BOX_H + 2), (x + wide / 2, turn), (nx + wide / 2, turn),
                                (nx + wide / 2, ny - 2)]))  # fmt: skip
    return _svg(width, height, body, title)


def drawings() -> dict[Path, str]:
    """Every SVG of the architecture page, by the path it is written to."""
    return {
        DOCS / "architecture-rooms.svg": rooms_svg(),
        DOCS / "architecture-inference.svg": flow_svg(INFERENCE_FLOW, "inference data flow"),
        DOCS / "architecture-training.svg": flow_svg(TRAINING_FLOW, "training data flow"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a written SVG is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, svg in drawings().items() if not path.is_file() or path.read_text() != svg]
    if args.check:
        for path in stale:
            print(f"error: {path.name} is out of date: run python docs/architecture_svg.py", file=sys.stderr)
        return 1 if stale else 0
    for path, svg in drawings().items():
        path.write_text(svg)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
