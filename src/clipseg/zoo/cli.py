"""``clipseg zoo list|verify|fetch|export``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

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
    known = cards()
    if args.name in known and out.parent.resolve() == repo_zoo_dir().resolve():
        known[args.name] = dataclasses.replace(known[args.name], sha256=digest, size_mb=round(size_mb, 2))
        write_cards(repo_zoo_dir() / "cards.json", known)
        print(f"updated the card {args.name!r} in {repo_zoo_dir() / 'cards.json'}")
    return 0


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
    e.set_defaults(run=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ZooError, FileNotFoundError, OSError, ValueError) as err:
        print(f"clipseg zoo: error: {err}", file=sys.stderr)
        return 1
