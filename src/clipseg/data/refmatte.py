"""RefMatte (keyword / expression prompts) and RefMatte-RW100 rows: image, alpha matte, text.

Layout of the RIM release (JizhiziLi/RIM), as read by code evaluating on it (MAM's ``rw100_*`` config
keys, SDMatte's ``generate_samples_from_refmatte``)::

    RefMatte/                                    src for split "train" / "test"
      {split}/img/{image_name}.jpg
      {split}/mask/{alpha_name}.png              one alpha matte per entity, "{image_name}_{k}"
      json/refmatte_{split}_label.json           {alpha_name: {"image_name", "keyword", "expressions"}}
    RefMatte_RW_100/                             src for split "rw100"
      image/{image_name}.jpg                     (some copies call the folder image_all/)
      mask/{alpha_name}.png
      refmatte_rw100_label.json                  same entries
      eval_index_expression.json                 {image_name: index of the expression to evaluate}

The ``mask`` column holds the alpha matte (0..255, mode L). ``setting`` "keyword" takes the entry's
``keyword``, "expression" its ``expressions``; where ``eval_index_<setting>.json`` lies next to the label
file it picks the one prompt to evaluate per image, otherwise every prompt gives a row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clipseg.data.sample_io import (
    check_size,
    encode_png,
    first_existing,
    load_json,
    make_row,
    read_image,
    read_png_array,
)
from clipseg.data.schema import BadSample

SETTINGS = {"keyword": "keyword", "expression": "expressions"}  # setting -> entry field


def locate(src: Path, split: str) -> tuple[Path, Path, Path]:
    """(image folder, alpha folder, label JSON) of ``split`` under ``src``."""
    if split == "rw100":
        images = first_existing([src / "image", src / "image_all"])
        return images, src / "mask", src / "refmatte_rw100_label.json"
    name = f"refmatte_{split}_label.json"
    labels = first_existing([src / "json" / name, src / split / name, src / name])
    return src / split / "img", src / split / "mask", labels


def prompts(
    alpha_name: str, entry: Any, field: str, eval_index: dict[str, Any] | None
) -> list[tuple[int, str]]:
    """The (position, text) prompts of one label entry: all of them, or the one ``eval_index`` picks."""
    if not isinstance(entry, dict) or not isinstance(entry.get("image_name"), str):
        raise BadSample(alpha_name, "label entry is not an object with an image_name")
    texts = entry.get(field)
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise BadSample(alpha_name, f"label entry needs a non-empty {field!r} (string or list of strings)")
    if eval_index is None:
        return [(i, t.strip()) for i, t in enumerate(texts)]
    if entry["image_name"] not in eval_index:
        raise BadSample(alpha_name, f"image {entry['image_name']!r} has no evaluation index")
    index = eval_index[entry["image_name"]]
    if not isinstance(index, int) or not 0 <= index < len(texts):
        raise BadSample(
            alpha_name, f"evaluation index {index!r} does not point into its {len(texts)} {field}"
        )
    return [(index, texts[index].strip())]


def iter_rows(
    src: Path, split: str = "test", *, setting: str = "expression"
) -> Iterator[dict[str, Any] | BadSample]:
    """Rows of RefMatte ``split`` ("train", "test") or of RefMatte-RW100 (``split="rw100"``).

    ``sample_id`` is the alpha name, with ``#<position>`` appended when an entity yields several prompts.
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    if split not in ("train", "test", "rw100"):
        raise ValueError(f"RefMatte split must be 'train', 'test' or 'rw100', got {split!r}")
    image_dir, alpha_dir, label_path = locate(Path(src), split)
    entries = load_json(label_path)
    if not isinstance(entries, dict):
        raise ValueError(f"{label_path} must map alpha names to entries")
    index_path = label_path.parent / f"eval_index_{setting}.json"
    eval_index = load_json(index_path) if index_path.is_file() else None
    for alpha_name in sorted(entries):
        entry = entries[alpha_name]
        try:
            texts = prompts(alpha_name, entry, SETTINGS[setting], eval_index)
            image_name = entry["image_name"]
            data, size = read_image(image_dir / f"{image_name}.jpg", alpha_name)
            alpha_path = alpha_dir / f"{alpha_name}.png"
            alpha = read_png_array(alpha_path, alpha_name, "alpha matte")
            check_size(alpha_name, f"alpha matte {alpha_path}", alpha.shape[::-1], size)
        except BadSample as bad:
            yield bad
            continue
        mask = encode_png(alpha)
        for position, text in texts:
            yield make_row(
                alpha_name if len(texts) == 1 else f"{alpha_name}#{position}",
                data,
                mask,
                text=text,
                meta={
                    "image_name": image_name,
                    "alpha_name": alpha_name,
                    "setting": setting,
                    "prompt_index": position,
                },
            )
