"""A fifth shapes renderer, written blind for evaluation only: cut-outs on a table, marker drawings on paper.

Written without reading any other drawing code of the project (issue #35), so that no training option
could have been chosen with knowledge of what it draws. Two looks, picked per scene:

- ``table``: paper or painted-wood cut-outs lying on a photographed surface (wood grain, concrete,
  linen, slate), lit from one side: a soft cast shadow, a bevel that is bright on the lit edge and dark
  on the far one, a brightness falloff over the whole photo, sensor noise, often JPEG;
- ``paper``: shapes coloured in with a marker on white, cream, ruled or squared paper: a darker
  wobbly outline stroke, streaky fill, an uneven scan/phone-photo exposure.

Edges are hand-cut or hand-drawn (low-frequency wobble), poses are any angle, 1-5 objects of small or
large size that do not overlap, canvases 128-400 px a side. Each object's colour is one of a few
shades of its colour word, jittered; a mask is the pixels of every object of the prompt's colour and
shape (object coverage > 1/2 after 4x supersampling). Scene ``i`` of seed ``s`` depends on ``(s, i)``
only.

    python bench/shapes_fifth.py --out outputs/shapes-fifth --scenes 200 --seed 7
    python bench/shapes_fifth.py --sheet docs/shapes-fifth.png      # 12 scenes with mask outlines
    python bench/shapes_fifth.py --out outputs/shapes-fifth --quality shapes-tiny   # by shape
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

COLOURS: dict[str, tuple[tuple[int, int, int], ...]] = {  # shades a person would give that name
    "red": ((205, 35, 40), (178, 22, 32), (226, 55, 48)),
    "orange": ((245, 135, 30), (236, 112, 22), (250, 152, 52)),
    "yellow": ((246, 212, 42), (250, 226, 72), (232, 196, 30)),
    "green": ((52, 160, 72), (30, 128, 52), (96, 176, 62)),
    "blue": ((42, 92, 202), (30, 60, 160), (62, 124, 222)),
    "purple": ((126, 56, 160), (100, 40, 130), (150, 82, 182)),
}
SHAPES = ("circle", "square", "triangle")
SUPER = 4  # supersampling factor of the object outlines: anti-aliased edges, masks at coverage 1/2


@dataclass(frozen=True)
class Piece:
    """One object: its words and its coverage of the canvas (``H x W`` float in [0, 1])."""

    colour: str
    shape: str
    coverage: np.ndarray


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """``H x W`` smooth noise, zero mean and unit-ish spread, with about ``cells`` blobs across."""
    gh, gw = max(2, round(h / max(h, w) * cells)), max(2, round(w / max(h, w) * cells))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC))


def _background(rng: np.random.Generator, h: int, w: int, look: str) -> np.ndarray:
    """``H x W x 3`` float RGB in [0, 1]: a table surface (``table``) or a sheet of paper (``paper``)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fine = rng.standard_normal((h, w)).astype(np.float32)
    if look == "paper":
        base = np.array([(250, 250, 246), (246, 240, 222), (238, 236, 230)][rng.integers(3)]) / 255
        img = base * (1 + 0.012 * fine + 0.02 * _smooth_noise(rng, h, w, 6))[..., None]
        ink = np.array([(150, 180, 225), (175, 175, 175)][rng.integers(2)]) / 255
        pitch = rng.uniform(10, 22)
        rule = (yy % pitch) < 1.0  # ruled lines; squared paper adds the columns
        if rng.random() < 0.5:
            rule |= (xx % pitch) < 1.0
        if rng.random() < 0.7:
            img = np.where(rule[..., None], 0.55 * img + 0.45 * ink, img)
        return img
    kind = rng.choice(["wood", "concrete", "linen", "slate"])
    if kind == "wood":
        angle = rng.uniform(0, np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        wavy = v + 14 * _smooth_noise(rng, h, w, 3) + 3 * _smooth_noise(rng, h, w, 12)  # knots and waves
        rings = rng.uniform(0.2, 0.5)
        grain = 0.5 + 0.3 * np.sin(wavy * rings) + 0.2 * np.sin(wavy * rings * 2.7 + 1.0)
        light, dark = np.array([196, 160, 118]) / 255, np.array([140, 100, 68]) / 255
        img = light + (dark - light) * (0.6 * grain + 0.1 * fine)[..., None]
        plank = rng.uniform(50, 120)
        img = img * np.where((v % plank) < 1.5, 0.7, 1.0)[..., None] * (0.9 + 0.15 * rng.random())
        return img * (1 + 0.03 * u / max(h, w))[..., None]
    if kind == "concrete":
        grey = rng.uniform(0.5, 0.75)
        tone = grey + 0.05 * _smooth_noise(rng, h, w, 8) + 0.03 * _smooth_noise(rng, h, w, 30) + 0.04 * fine
        return np.repeat(tone[..., None], 3, axis=2) * np.array([1.0, 0.99, 0.96])
    if kind == "linen":
        base = np.array([(214, 204, 184), (190, 190, 186), (226, 220, 208)][rng.integers(3)]) / 255
        weave = 0.04 * np.sin(xx * 2.1) * np.sin(yy * 2.1) + 0.03 * _smooth_noise(rng, h, w, 20)
        return base * (1 + weave + 0.03 * fine)[..., None]
    slate = np.array([62, 66, 72]) / 255 * rng.uniform(0.8, 1.3)
    return slate * (1 + 0.08 * _smooth_noise(rng, h, w, 10) + 0.05 * fine)[..., None]


def _outline(rng: np.random.Generator, shape: str, radius: float, wobble: float) -> np.ndarray:
    """``N x 2`` outline points of a shape centred at 0 that fits a circle of ``radius``, any pose."""
    turn = rng.uniform(0, 2 * np.pi)
    if shape == "circle":
        corners = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        squash = np.array([1.0, rng.uniform(0.94, 1.0)])  # a hand-cut circle is a little out of round
    else:
        count = 4 if shape == "square" else 3
        corners = np.arange(count) * 2 * np.pi / count
        if shape == "triangle":  # not always equilateral: any triangle a person would call one
            corners = corners + rng.uniform(-0.25, 0.25, 3)
        squash = np.ones(2)
    points = np.stack([np.cos(corners), np.sin(corners)], 1) * squash
    if shape == "triangle":
        points = points * rng.uniform(0.85, 1.0, (3, 1))
    # densify along the edges, then push each point in or out by a smooth periodic wobble
    ends = np.roll(points, -1, axis=0)
    steps = np.linspace(0, 1, 40, endpoint=False)[None, :, None]
    dense = (points[:, None] + (ends - points)[:, None] * steps).reshape(-1, 2)
    t = np.linspace(0, 2 * np.pi, len(dense), endpoint=False)
    bump = sum(rng.normal(0, 1) * np.sin(k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(2, 8))
    dense = dense * (1 + wobble * bump)[:, None]
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return radius * dense @ rotation.T


def _coverage(points: np.ndarray, centre: tuple[float, float], h: int, w: int) -> np.ndarray:
    """``H x W`` fraction of each pixel inside the polygon ``points + centre`` (4x supersampled)."""
    canvas = Image.new("L", (w * SUPER, h * SUPER), 0)
    xy = (points + np.asarray(centre)) * SUPER
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in xy], fill=255)
    return np.asarray(canvas.resize((w, h), Image.Resampling.BOX), dtype=np.float32) / 255


def _pieces(rng: np.random.Generator, h: int, w: int, wobble: float) -> list[Piece]:
    """1-5 non-overlapping objects inside the canvas; ones that find no room are left out."""
    side = min(h, w)
    placed: list[tuple[float, float, float]] = []
    pieces = []
    for _ in range(rng.integers(1, 6)):
        colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
        radius = side * (rng.uniform(0.07, 0.11) if rng.random() < 0.5 else rng.uniform(0.12, 0.21))
        for _ in range(80):
            x, y = rng.uniform(radius + 2, w - radius - 2), rng.uniform(radius + 2, h - radius - 2)
            if all(np.hypot(x - px, y - py) > radius + pr + 3 for px, py, pr in placed):
                placed.append((x, y, radius))
                points = _outline(rng, shape, radius, wobble)
                pieces.append(Piece(colour, shape, _coverage(points, (x, y), h, w)))
                break
            radius *= 0.98  # a crowded canvas: try a little smaller
    return pieces


def _paint(rng: np.random.Generator, colour: str) -> np.ndarray:
    """One shade of ``colour`` (RGB in [0, 1]), jittered in brightness and per channel."""
    shades = COLOURS[colour]
    rgb = np.array(shades[rng.integers(len(shades))], dtype=np.float32) / 255
    return np.clip(rgb * rng.uniform(0.9, 1.06) + rng.normal(0, 0.025, 3), 0, 1)


def _lay(rng: np.random.Generator, img: np.ndarray, piece: Piece, look: str, light: np.ndarray) -> None:
    """Paint ``piece`` onto ``img`` in place: a cut-out with bevel (``table``) or a marker drawing."""
    cov = piece.coverage
    rgb = _paint(rng, piece.colour)
    h, w = cov.shape
    grain = rng.standard_normal((h, w)).astype(np.float32)
    if look == "table":
        soft = gaussian_filter(cov, 1.5)
        gy, gx = np.gradient(soft)
        bevel = -(gx * light[0] + gy * light[1])  # > 0 on the edge that faces the light
        tone = 1 + 0.9 * bevel + 0.015 * grain
    else:
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        streak = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.8, 1.4))
        ring = np.clip(cov - _erode(cov, rng.uniform(1.0, 2.2)), 0, 1)  # the outline stroke
        tone = (1 - 0.05 * streak + 0.02 * grain) * (1 - 0.4 * ring)
    colour = np.clip(rgb * tone[..., None], 0, 1)
    img *= 1 - cov[..., None]
    img += colour * cov[..., None]


def _erode(cov: np.ndarray, width: float) -> np.ndarray:
    """Coverage shrunk by about ``width`` pixels: the inside of a stroke of that width."""
    return np.clip((gaussian_filter(cov, width) - 0.5) * 4 + 0.5, 0, 1) * cov


def _shadows(img: np.ndarray, pieces: list[Piece], light: np.ndarray, side: int, depth: float) -> None:
    """Darken ``img`` in place where the pieces cast their shadows, away from the light."""
    shift = -light * side * 0.035
    total = np.zeros(img.shape[:2], dtype=np.float32)
    for piece in pieces:
        moved = np.roll(piece.coverage, (round(shift[1]), round(shift[0])), axis=(0, 1))
        total = np.maximum(total, moved)
    img *= (1 - depth * gaussian_filter(total, side * 0.015 + 0.5))[..., None]


def render(seed: int, index: int) -> tuple[np.ndarray, list[Piece], bool]:
    """Scene ``index`` of ``seed``: ``H x W x 3`` uint8 image, its pieces, and whether to store it as JPEG."""
    rng = np.random.default_rng([seed, index])
    h, w = (int(v) for v in rng.integers(128, 401, 2))
    look = "table" if rng.random() < 0.6 else "paper"
    img = _background(rng, h, w, look).astype(np.float32)
    pieces = _pieces(rng, h, w, wobble=rng.uniform(0.004, 0.015 if look == "table" else 0.03))
    angle = rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)  # towards the light, (x, y)
    if look == "table":
        _shadows(img, pieces, light, min(h, w), rng.uniform(0.3, 0.55))
    for piece in pieces:
        _lay(rng, img, piece, look, light)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    toward = ((xx - w / 2) * light[0] + (yy - h / 2) * light[1]) / max(h, w)
    radial = np.hypot(xx / w - 0.5, yy / h - 0.5)
    exposure = (
        rng.uniform(0.9, 1.08) * (1 + rng.uniform(0.1, 0.3) * toward) * (1 - rng.uniform(0, 0.35) * radial**2)
    )
    img = img * exposure[..., None] + rng.normal(0, rng.uniform(0.004, 0.02), img.shape)
    jpeg = look == "table" or rng.random() < 0.5
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), pieces, jpeg


def prompt_masks(pieces: list[Piece]) -> dict[str, np.ndarray]:
    """``{"<colour> <shape>": H x W bool}``: the pixels of every piece of that colour and shape."""
    masks: dict[str, np.ndarray] = {}
    for piece in pieces:
        prompt = f"{piece.colour} {piece.shape}"
        inside = piece.coverage > 0.5
        masks[prompt] = masks[prompt] | inside if prompt in masks else inside
    return masks


def write_folder(folder: str | Path, n: int, *, seed: int, absent_prompts: bool = True) -> Path:
    """Write ``n`` scenes as an annotated folder (``image,mask,prompt``); returns the folder.

    One row per colour-and-shape present, and with ``absent_prompts`` one more with an all-zero mask
    for a colour and shape the scene lacks (drawn from the scene's own seed).
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rows = []
    for index in range(n):
        image, pieces, jpeg = render(seed, index)
        name = f"images/{index:04d}.{'jpg' if jpeg else 'png'}"
        rng = np.random.default_rng([seed, index, 1])
        Image.fromarray(image).save(folder / name, **({"quality": int(rng.integers(75, 96))} if jpeg else {}))
        masks = prompt_masks(pieces)
        if absent_prompts:
            missing = [f"{c} {s}" for c in COLOURS for s in SHAPES if f"{c} {s}" not in masks]
            masks[str(rng.choice(missing))] = np.zeros(image.shape[:2], dtype=bool)
        for prompt, mask in masks.items():
            mask_name = f"masks/{index:04d}-{prompt.replace(' ', '-')}.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(folder / mask_name)
            rows.append({"image": name, "mask": mask_name, "prompt": prompt})
    _write_rows(folder / "annotations.csv", rows)
    return folder


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "prompt"])
        writer.writeheader()
        writer.writerows(rows)


def quality_by_shape(model: str, folder: Path) -> dict[str, dict[str, float]]:
    """``folder_quality`` of ``model`` on the folder's rows, all and of each shape (absent rows go by
    their prompt's shape): ``{"all" | shape: {"text_miou", "absent_marked_fraction", "n_text", ...}}``.

    Each shape's rows go to ``annotations-<shape>.csv`` beside the folder's own file, which stays whole.
    """
    from clipseg import load_model  # torch only for the measurement: the renderer needs none
    from clipseg.eval.quality import folder_quality

    predictor = load_model(model)
    with (folder / "annotations.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    results = {"all": folder_quality(predictor, folder, progress=False)}
    for shape in SHAPES:
        part = folder / f"annotations-{shape}.csv"
        _write_rows(part, [row for row in rows if row["prompt"].endswith(shape)])
        results[shape] = folder_quality(predictor, part, progress=False)
    return results


def contact_sheet(path: Path, *, seed: int = 7, count: int = 12, tile: int = 200) -> None:
    """A PNG of ``count`` scenes, each object's mask outlined, its prompts written underneath."""
    columns = 4
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 28)), "white")
    draw = ImageDraw.Draw(sheet)
    for index in range(count):
        image, pieces, _ = render(seed, index)
        masks = prompt_masks(pieces)
        edge = np.zeros(image.shape[:2], dtype=bool)
        for mask in masks.values():
            edge |= mask & ~(
                np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
            )
        shown = image.copy()
        shown[edge] = (255, 0, 255)
        thumb = Image.fromarray(shown)
        thumb.thumbnail((tile, tile))
        x, y = (index % columns) * tile, (index // columns) * (tile + 28)
        sheet.paste(thumb, (x, y))
        text = ", ".join(masks)
        draw.text((x + 2, y + tile + 2), text[:34], fill="black")
        draw.text((x + 2, y + tile + 14), text[34:68], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    # a palette keeps the noisy photos small; the octree one keeps their colours (median cut greys them)
    sheet.quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write an annotated folder here")
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of 12 scenes here")
    parser.add_argument("--quality", metavar="MODEL", help="then score this zoo name or model file on --out")
    args = parser.parse_args()
    if args.out is None and args.sheet is None:
        parser.error("give --out and/or --sheet")
    if args.quality is not None and args.out is None:
        parser.error("--quality scores the folder of --out; give --out")
    if args.out is not None and not (args.out / "annotations.csv").exists():
        write_folder(args.out, args.scenes, seed=args.seed, absent_prompts=True)
    if args.quality is not None:
        print("| rows | text mIoU | prompts | absent marked | absent prompts |\n|---|---|---|---|---|")
        for name, r in quality_by_shape(args.quality, args.out).items():
            print(
                f"| {name} | {r['text_miou']:.3f} | {r['n_text']} | {r['absent_marked_fraction']:.4f} | {r['n_absent']} |"
            )
    if args.sheet is not None:
        contact_sheet(args.sheet, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
