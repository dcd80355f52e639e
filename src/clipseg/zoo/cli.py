"""``clipseg zoo list|verify|fetch|export``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from clipseg.zoo import cards, get_card
from clipseg.zoo.cards import ModelCard, write_cards
from clipseg.zoo.store import ZooError, fetch, local_file, repo_zoo_dir, sha256_of, verify


def _status(card: ModelCard) -> str:
    path = local_file(card)
    if path is None:
        return "missing"
    return "shipped" if path.parent == repo_zoo_dir() else "cached"


def cmd_list(args: argparse.Namespace) -> int:
    print(f"{'name':<22} {'format':<12} {'size':>8}  {'status':<8} description")
    for name, card in cards().items():
        size = f"{card.size_mb:.1f}MB" if card.size_mb else "-"
        print(f"{name:<22} {card.format:<12} {size:>8}  {_status(card):<8} {card.description}")
        if card.vocabulary:  # a fixed-vocabulary model: other words mean nothing to it
            print(f"{'':<22} vocabulary: {' '.join(card.vocabulary)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.names or list(cards()):
        card = get_card(name)
        path = local_file(card)
        if path is None:
            print(f"{name}: missing (nothing to verify)")
            continue
        try:
            digest = verify(card, path)
        except ZooError as err:
            print(f"{name}: FAILED: {err}")
            failed += 1
            continue
        how = "card digest" if card.sha256 else "digest pinned at first download (no published digest)"
        print(f"{name}: OK {digest} ({how}) {path}")
    return 1 if failed else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        card = get_card(name)
        path = fetch(card)
        print(f"{name}: {verify(card, path)} {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from clipseg.training.export import export_checkpoint

    out = export_checkpoint(args.ckpt, args.out, args.name)
    digest = sha256_of(out)
    size_mb = out.stat().st_size / 1e6
    print(f"exported {args.ckpt} -> {out} ({size_mb:.1f} MB, sha256 {digest})")
    quality = _shapes_quality(out, args.quality_scenes) if args.quality_scenes else {}
    known = cards()
    if args.name in known and out.parent.resolve() == repo_zoo_dir().resolve():
        card = known[args.name]
        # Numbers measured on another file would now describe the wrong weights.
        measured = card.measured if card.sha256 == digest else {}
        if card.measured and not measured:
            print(f"dropped the card's measured numbers (they were for sha256 {card.sha256})")
        measured = {**measured, **quality}
        known[args.name] = dataclasses.replace(
            card, sha256=digest, size_mb=round(size_mb, 2), measured=measured, vocabulary=_vocabulary(out)
        )
        write_cards(repo_zoo_dir() / "cards.json", known)
        print(f"updated the card {args.name!r} in {repo_zoo_dir() / 'cards.json'}")
    return 0


def _vocabulary(path: Path) -> tuple[str, ...]:
    """The words of the tokenizer a model file carries (a fixed-corpus one), else none."""
    from clipseg.tokenizer import read_tokenizer, vocabulary_words

    tokenizer = read_tokenizer(path)
    return tuple(vocabulary_words(tokenizer)) if tokenizer is not None else ()


def _shapes_quality(path: Path, scenes: int) -> dict[str, Any]:
    """``shapes-quality/...`` numbers of the model file at ``path``: means and worst seeds over
    ``clipseg.quality.QUALITY_SEEDS``, ``scenes`` scenes each, with the seeds and scene count."""
    from clipseg.quality import shapes_quality_over_seeds
    from clipseg.zoo import load_model

    scores = shapes_quality_over_seeds(load_model(str(path)), n=scenes)
    for seed_scores in scores["per_seed"]:
        print(
            "shapes quality: "
            + ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in seed_scores.items()
            )
        )
    keys = [k for k, v in scores.items() if isinstance(v, float)]
    print("over seeds: " + ", ".join(f"{k} {scores[k]:.4g}" for k in keys))
    measured: dict[str, Any] = {f"shapes-quality/{k}": round(scores[k], 4) for k in keys}
    return measured | {"shapes-quality/scenes": scenes, "shapes-quality/seeds": scores["seeds"]}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clipseg zoo", description="Named pretrained models.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every card and whether its file is here").set_defaults(run=cmd_list)
    v = sub.add_parser("verify", help="check the sha256 of local files")
    v.add_argument("names", nargs="*", help="models to check (default: all)")
    v.set_defaults(run=cmd_verify)
    f = sub.add_parser("fetch", help="download (hub) and verify models")
    f.add_argument("names", nargs="+")
    f.set_defaults(run=cmd_fetch)
    e = sub.add_parser(
        "export", help="Lightning checkpoint -> zoo safetensors (updates the card when in zoo/)"
    )
    e.add_argument("--ckpt", type=Path, required=True, help="e.g. outputs/shapes-tiny/checkpoints/last.ckpt")
    e.add_argument("--name", required=True, help="zoo name stored in the file")
    e.add_argument(
        "--out", type=Path, default=repo_zoo_dir(), help="folder or .safetensors path (default: zoo/)"
    )
    e.add_argument(
        "--quality-scenes",
        type=int,
        default=0,
        metavar="N",
        help="measure shapes quality (clipseg.quality) on N fresh scenes of each of its seeds; "
        "recorded on the card when in zoo/",
    )
    e.set_defaults(run=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ZooError, FileNotFoundError, OSError, ValueError) as err:
        print(f"clipseg zoo: error: {err}", file=sys.stderr)
        return 1
