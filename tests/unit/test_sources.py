"""Which files ``clipseg predict PATH...`` picks up, and where their outputs go."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from clipseg.inference.sources import SourceError, collect_inputs


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def keys(inputs):
    return [str(i.key) for i in inputs]


def test_folder_is_recursive_sorted_and_mirrored(tmp_path):
    for name in (
        "b.png",
        "a.jpg",
        "sub/c.png",
        "sub/deeper/d.webp",
        "notes.txt",
        ".hidden.png",
        ".cache/e.png",
    ):
        touch(tmp_path / "in" / name)
    inputs = collect_inputs([tmp_path / "in"])
    assert keys(inputs) == ["a", "b", "sub/c", "sub/deeper/d"]
    assert inputs[2].name == PurePosixPath("sub/c.png")


def test_same_stem_in_one_folder_gets_the_extension(tmp_path):
    touch(tmp_path / "cat.png")
    touch(tmp_path / "cat.jpg")
    touch(tmp_path / "dog.png")
    assert sorted(keys(collect_inputs([tmp_path]))) == ["cat-jpg", "cat-png", "dog"]


def test_files_from_two_folders_keep_their_folders(tmp_path):
    a, b = touch(tmp_path / "a" / "x.png"), touch(tmp_path / "b" / "x.png")
    assert keys(collect_inputs([a, b])) == ["a/x", "b/x"]
    assert keys(collect_inputs([a])) == ["x"]  # one file: outputs directly in --out, as before


def test_glob_is_relative_to_its_folder_and_duplicates_count_once(tmp_path):
    touch(tmp_path / "shots" / "one.png")
    touch(tmp_path / "shots" / "two.png")
    touch(tmp_path / "shots" / "clip.mp4")
    inputs = collect_inputs([str(tmp_path / "shots" / "*.png"), tmp_path / "shots" / "one.png"])
    assert keys(inputs) == ["one", "two"]
    video = collect_inputs([tmp_path / "shots"])[0]
    assert video.is_video and str(video.key) == "clip.mp4"  # a video's outputs fill a folder of its name


def stamped(path: Path) -> Path:
    """A PNG as a run writes it (its options in a text chunk)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from clipseg.inference.stamps import STAMP_KEY

    info = PngInfo()
    info.add_text(STAMP_KEY, "{}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (4, 4)).save(path, pnginfo=info)
    return path


def test_only_our_own_outputs_under_out_are_skipped(tmp_path):
    """Issue 36 defect 9: every input under --out was skipped, so `--out .` found nothing."""
    touch(tmp_path / "a.png")
    stamped(tmp_path / "out" / "a_0_x.png")
    stamped(tmp_path / "out" / "clip.mp4" / "000000_0_x.png")
    touch(tmp_path / "out" / "clip.mp4" / "0_x.mp4")  # a mask video, beside the folder's stamp file
    touch(tmp_path / "out" / "clip.mp4" / ".clipseg-stamp")
    touch(tmp_path / "out" / "mine.jpg")  # the user's own photo that happens to live there
    assert keys(collect_inputs([tmp_path], exclude=tmp_path / "out")) == ["a", "out/mine"]
    # --out is the inputs' own folder (`clipseg predict s1.png --out .`), or its parent
    assert keys(collect_inputs([tmp_path / "a.png"], exclude=tmp_path)) == ["a"]
    assert keys(collect_inputs([tmp_path / "a.png"], exclude=tmp_path.parent)) == ["a"]
    assert keys(collect_inputs([tmp_path / "out"], exclude=tmp_path / "out")) == ["mine"]
    # One of our outputs named on its own is meant: it is taken.
    assert keys(collect_inputs([tmp_path / "out" / "a_0_x.png"], exclude=tmp_path / "out")) == ["a_0_x"]


def test_inputs_below_a_hidden_parent_folder_are_found(tmp_path):
    """``~/.cache/photos/``: the hidden part is above the named folder; hidden entries inside stay skipped."""
    photos = tmp_path / ".cache" / "photos"
    touch(photos / "one.png")
    touch(photos / ".thumbs" / "one.png")
    touch(photos / ".two.png")
    assert keys(collect_inputs([photos])) == ["one"]
    assert keys(collect_inputs([str(photos / "*.png")])) == ["one"]
    assert keys(collect_inputs([photos / "one.png"])) == ["one"]


@pytest.mark.parametrize("spec", ["missing.png", "empty_dir", "*.nothing"])
def test_a_spec_matching_nothing_is_named(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(SourceError, match=spec.replace("*", r"\*")):
        collect_inputs([spec])


def test_decode_streams_in_order_and_a_failing_file_fails_only_itself(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    import clipseg.inference.sources as sources

    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.full((4, 5, 3), ord(name[0]), np.uint8)).save(tmp_path / name)
    real = sources.load_image

    def flaky(path):
        if Path(path).name == "b.png":
            raise OSError("device went away")
        return real(path)

    monkeypatch.setattr(sources, "load_image", flaky)
    events = list(sources.decode(collect_inputs([tmp_path]), workers=2, prefetch=1))
    summary = [(type(e).__name__, str(e.input.key), getattr(e, "error", None)) for e in events]
    assert summary == [
        ("Decoded", "a", None),
        ("Finished", "a", None),
        ("Finished", "b", f"{tmp_path / 'b.png'}: not a readable image (device went away)"),
        ("Decoded", "c", None),
        ("Finished", "c", None),
    ]
    assert int(events[3].image[0, 0, 0]) == ord("c")
