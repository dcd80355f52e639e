"""``clipseg prepare folder|coco``: splits by image, merged masks, bad rows named and counted, nothing half-written."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from fixture_data.custom_formats import read_csv_rows, write_csv_rows, write_small_coco, write_small_folder
from PIL import Image

from clipseg.cli.prepare import prepare_main
from clipseg.data import prepare as prep
from clipseg.data.coco import decode_segmentation
from clipseg.data.folder import iter_rows as folder_rows
from clipseg.data.user_data import read_binary_mask, validation_images


def _rows(out, split):
    rows = []
    for path in sorted((out / split).glob("shard-*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def _mask(row) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(row["mask"]))) > 127


def test_folder_splits_by_image_and_merges_rows_of_one_image_and_prompt(tmp_path):
    src = write_small_folder(tmp_path / "raw", n=10)
    rows = read_csv_rows(src)
    # A second row for the first (image, prompt), with another object's mask: the target is the union.
    extra = next(r for r in rows if r["image"] == rows[0]["image"] and r["prompt"] != rows[0]["prompt"])
    write_csv_rows(src, [*rows, {**rows[0], "mask": extra["mask"]}])
    report = prep.prepare("folder", src, tmp_path / "out")
    train, val = _rows(tmp_path / "out", "train"), _rows(tmp_path / "out", "val")
    assert report["splits"]["train"]["rows"] == len(train) and report["splits"]["val"]["rows"] == len(val)
    assert len(train) + len(val) == len(rows)  # the extra row was merged, not added
    images = {
        split: {json.loads(r["meta"])["image_id"] for r in part} for split, part in (("t", train), ("v", val))
    }
    assert len(images["v"]) == 1 and not images["t"] & images["v"]  # 10 % of 10 images, none in both
    merged = next(r for r in train + val if r["sample_id"] == "annotations.csv:2")
    expected = [np.asarray(Image.open(src / name)) > 127 for name in (rows[0]["mask"], extra["mask"])]
    assert np.array_equal(_mask(merged), expected[0] | expected[1])
    assert json.loads(merged["meta"])["prompts"] == [
        r["prompt"] for r in rows if r["image"] == rows[0]["image"]
    ]


def test_validation_images_are_seeded_and_by_image():
    images = [f"{i}.png" for i in range(50)] * 2
    val = validation_images(images, 0.1, seed=3)
    assert len(val) == 5 and val == validation_images(images, 0.1, seed=3) != validation_images(
        images, 0.1, 4
    )
    assert validation_images(["a.png"], 0.1, seed=0) == set()  # a single image trains


@pytest.mark.timeout(60)  # a worker's BadSample that cannot be unpickled hung the pool (issue 36)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_folder_rows_are_named_counted_and_the_rest_written(tmp_path, capsys, workers):
    src = write_small_folder(tmp_path / "raw", n=6)
    rows = read_csv_rows(src)
    Image.new("L", (17, 9)).save(src / "masks" / "small.png")
    (src / "images" / "broken.png").write_bytes(b"not a png")
    (src / "masks" / "broken.png").write_bytes(b"not a png either")
    bad = [
        {"image": "images/nope.png", "mask": rows[0]["mask"], "prompt": "red circle"},
        {"image": rows[0]["image"], "mask": "masks/small.png", "prompt": "blue circle"},
        {"image": rows[0]["image"], "mask": rows[0]["mask"], "prompt": "  "},
        {"image": "images/broken.png", "mask": rows[0]["mask"], "prompt": "red circle"},
        {"image": rows[1]["image"], "mask": "masks/broken.png", "prompt": "odd thing"},
    ]
    write_csv_rows(src, [*rows, *bad])
    argv = ["folder", "--src", str(src), "--out", str(tmp_path / "out"), "--workers", workers]
    assert prepare_main(argv) == 0
    out = capsys.readouterr().out
    assert "images/nope.png is missing" in out and "skipped annotations.csv:" in out  # reasons shown
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())
    reasons = {s["sample_id"]: s["reason"] for split in skipped.values() for s in split}
    first_bad = len(rows) + 2  # CSV line of the first bad row (header is line 1)
    assert "images/nope.png is missing" in reasons[f"annotations.csv:{first_bad}"]
    assert "is 17x9 but the image is 48x48" in reasons[f"annotations.csv:{first_bad + 1}"]
    assert "empty prompt" in reasons[f"annotations.csv:{first_bad + 2}"]
    assert "not in a known image format" in reasons[f"annotations.csv:{first_bad + 3}"]
    assert "masks/broken.png is not readable" in reasons[f"annotations.csv:{first_bad + 4}"]
    assert len(reasons) == 5
    written = len(_rows(tmp_path / "out", "train")) + len(_rows(tmp_path / "out", "val"))
    assert written == len(rows)


def test_a_csv_without_a_needed_column_stops_before_anything_is_written(tmp_path, capsys):
    src = write_small_folder(tmp_path / "raw", n=3)
    write_csv_rows(src, read_csv_rows(src), columns=("image", "prompt"))
    assert prepare_main(["folder", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
    out = capsys.readouterr().err
    assert out.count("error:") == 1 and "lacks the column(s) mask" in out
    assert not (tmp_path / "out").exists()


def test_jsonl_with_a_split_column_and_idempotent_reruns(tmp_path):
    src = write_small_folder(tmp_path / "raw", n=4)
    rows = read_csv_rows(src)
    (src / "annotations.csv").unlink()
    lines = [json.dumps({**r, "split": "val" if r["image"].endswith("3.png") else "train"}) for r in rows]
    (src / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    first = prep.prepare("folder", src, tmp_path / "out")
    val_rows = sum(r["image"].endswith("3.png") for r in rows)
    assert (
        first["splits"]["val"]["rows"] == val_rows
        and first["splits"]["train"]["rows"] == len(rows) - val_rows
    )
    assert prep.prepare("folder", src, tmp_path / "out")["splits"]["train"]["reused"]
    (src / "annotations.jsonl").write_text("\n".join(lines[1:]) + "\n")  # an edited file is converted again
    again = prep.prepare("folder", src, tmp_path / "out")["splits"]
    assert not again["train"]["reused"] and again["train"]["rows"] + again["val"]["rows"] == len(rows) - 1


def test_workers_write_the_same_rows_as_one_process(tmp_path):
    src = write_small_folder(tmp_path / "raw", n=6)
    one = [r["mask"] for r in folder_rows(src, "train")]
    two = [r["mask"] for r in folder_rows(src, "train", workers=2)]
    assert one == two and len(one) == len(folder_rows(src, "train"))


@pytest.mark.parametrize(
    ("mode", "pixels", "expected"),
    [
        ("L", [0, 127, 128, 255], [0, 0, 1, 1]),
        ("1", [0, 0, 1, 1], [0, 0, 1, 1]),
        ("I;16", [0, 32767, 32896, 65535], [0, 0, 1, 1]),
        ("RGB", [(0, 0, 0), (255, 0, 0), (255, 255, 255), (200, 200, 200)], [0, 0, 1, 1]),
        ("RGBA", [(0, 0, 0, 0), (0, 0, 0, 100), (0, 0, 0, 200), (0, 0, 0, 255)], [0, 0, 1, 1]),
    ],
)
def test_masks_of_every_kind_read_as_documented(tmp_path, mode, pixels, expected):
    img = Image.new(mode, (4, 1))
    img.putdata(pixels)
    img.save(tmp_path / "m.png")
    assert read_binary_mask(tmp_path / "m.png", "m").ravel().tolist() == [bool(v) for v in expected]


def test_palette_masks_read_through_their_palette(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 255, 255, 255, 128, 0, 0] + [0] * 759)  # index 2: dark red (a VOC-like id)
    img.putdata([0, 1, 2])
    img.save(tmp_path / "p.png")
    assert read_binary_mask(tmp_path / "p.png", "p").ravel().tolist() == [False, True, False]


def test_coco_rows_merge_instances_per_image_and_category(tmp_path):
    instances = write_small_coco(tmp_path / "coco", n=8)
    data = json.loads(instances.read_text())
    argv = ["coco", "--src", str(instances), "--images", str(tmp_path / "coco" / "images")]
    assert prepare_main([*argv, "--out", str(tmp_path / "out"), "--workers", "2"]) == 0
    rows = _rows(tmp_path / "out", "train") + _rows(tmp_path / "out", "val")
    pairs = {(a["image_id"], a["category_id"]) for a in data["annotations"]}
    assert len(rows) == len(pairs)
    crowd = next(a for a in data["annotations"] if a["iscrowd"])
    name = {c["id"]: c["name"] for c in data["categories"]}[crowd["category_id"]]
    row = next(r for r in rows if r["sample_id"] == f"000.png:{name}")
    assert row["text"] == name and np.array_equal(
        _mask(row), decode_segmentation(crowd["segmentation"], 48, 48)
    )


def test_coco_template_names_and_unknown_ids_are_named_and_counted(tmp_path):
    instances = write_small_coco(tmp_path / "coco", n=4)
    data = json.loads(instances.read_text())
    data["annotations"].append({**data["annotations"][0], "id": 999, "image_id": 77})
    data["annotations"].append({**data["annotations"][0], "id": 998, "category_id": 55})
    instances.write_text(json.dumps(data))
    first = data["categories"][0]["name"]
    options = {"images": str(tmp_path / "coco" / "images"), "template": "a {}", "names": {first: "thing"}}
    report = prep.prepare("coco", instances, tmp_path / "out", options=options)
    assert report["splits"]["train"]["skipped"] == 2
    skipped = {
        s["sample_id"]: s["reason"]
        for s in json.loads((tmp_path / "out" / "skipped.json").read_text())["train"]
    }
    assert "image id 77 is not among the file's images" in skipped["annotation 999"]
    assert "category id 55" in skipped["annotation 998"]
    texts = {r["text"] for r in _rows(tmp_path / "out", "train") + _rows(tmp_path / "out", "val")}
    assert "a thing" in texts and all(t.startswith("a ") for t in texts)


def test_coco_polygons_decode_to_their_area():
    square = [[2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]]
    mask = decode_segmentation(square, 10, 12)
    assert mask.shape == (10, 12) and mask[3:8, 3:8].all() and not mask[0].any() and not mask[:, 10:].any()


def test_coco_without_images_folder_is_one_clear_error(tmp_path, capsys):
    instances = write_small_coco(tmp_path / "coco", n=1)
    assert prepare_main(["coco", "--src", str(instances), "--out", str(tmp_path / "out")]) == 2
    assert "needs --images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _prompt_row(image_id: str, text: str, prompts: list[str]) -> dict:
    from clipseg.data.sample_io import encode_png, make_row

    mask = np.zeros((8, 8), dtype=bool)
    mask[2:5, 2:5] = True
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buffer, format="PNG")
    meta = {"image_id": image_id, "prompts": prompts}
    return make_row(f"{image_id}:{text}", buffer.getvalue(), encode_png(mask), text=text, meta=meta)


def test_negatives_never_name_an_object_the_image_has():
    from clipseg.data.streaming import PromptPolicy

    # "b" is annotated on image 1 too, so it cannot be image 1's absent object; "c" can.
    rows = [_prompt_row("2", "b", ["b"]), _prompt_row("1", "a", ["a", "b"])]
    sample = list(PromptPolicy(negative_prob=1.0)(rows))[-1]
    assert sample["text"] == "a" and sample["mask"].any()
    rows = [_prompt_row("2", "c", ["c"]), _prompt_row("1", "a", ["a", "b"])]
    sample = list(PromptPolicy(negative_prob=1.0)(rows))[-1]
    assert sample["text"] == "c" and not sample["mask"].any()


def test_visual_prompts_come_from_another_image_with_the_same_phrase():
    from clipseg.data.streaming import PromptPolicy

    rows = [_prompt_row("2", "a", ["a"]), _prompt_row("3", "b", ["b"]), _prompt_row("1", "a", ["a"])]
    policy = PromptPolicy(visual=True, same_phrase_support=True)
    first, second, third = list(policy(rows))
    assert first["support"] is None and second["support"] is None  # no earlier sample of their phrase
    assert third["support"] is not None and third["text_weight"] <= 0.5
    never = PromptPolicy(visual=True, visual_prob=0.0, same_phrase_support=True)
    assert list(never(rows))[-1]["support"] is None


def test_an_annotation_file_without_rows_is_one_error_line(tmp_path, capsys):
    src = write_small_folder(tmp_path / "raw", n=2)
    write_csv_rows(src, [])  # the header alone
    assert prepare_main(["folder", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "has no annotation rows" in err[0]
    assert not (tmp_path / "out").exists()
