"""What ``clipseg predict`` prints when it ends: the ``--json`` summary, or lines for people."""

from __future__ import annotations

import json

DETAIL_LINES = 10  # up to this many masked images (videos), one line per mask; beyond, only the summary
SHOWN_PROMPT_CHARS = 60  # a prompt longer than this is cut in the printed lines


def shorten(text: str, limit: int = SHOWN_PROMPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a count of what was left out (the --json summary has it whole)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}... (+{len(text) - limit} chars)"


def print_summary(summary: dict, *, as_json: bool) -> None:
    """Print ``summary`` (what ``predict.run`` returns) as JSON, or one line per mask of up to
    ``DETAIL_LINES`` images and videos (a video's presence: its highest over the frames), the videos'
    folders, the COCO file and the run's counts."""
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if len(summary["images"]) <= DETAIL_LINES:
        for entry in summary["images"]:
            for m in entry["masks"]:
                written = f" -> {m['file']}" if "file" in m else ""
                label = shorten(m["prompt"])
                print(
                    f"{entry['image']}: {label!r}: presence {m['presence']:.2f}, "
                    f"{100 * m['area']:.1f}% of pixels{written}"
                )
            if "overlay" in entry:
                print(f"overlay: {entry['overlay']}")
    for entry in summary["videos"]:
        if len(summary["videos"]) <= DETAIL_LINES:
            for m in entry["masks"]:
                print(
                    f"{entry['video']}: {shorten(m['prompt'])!r}: presence {m['presence']:.2f} "
                    f"(highest of {entry['frames']} frames; mean {m['presence_mean']:.2f})"
                )
        print(f"{entry['video']} -> {entry['folder']}")
    if summary["coco"]:
        print(f"coco: {summary['coco']}")
    print(summary["summary"])
