"""``clipseg zoo list|verify|fetch|pack|push`` (``zoo export`` is pack's earlier name, still accepted)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from clipseg.core.files import sha256_of
from clipseg.core.help import REVISION_HELP, HelpFormatter
from clipseg.zoo import cards, get_card
from clipseg.zoo.cards import ModelCard, write_cards
from clipseg.zoo.hub import hub_cache_dir
from clipseg.zoo.store import ZooError, cache_dir, expected_sha256, fetch, local_file, repo_zoo_dir, verify


def _where(card: ModelCard) -> tuple[str, str]:
    """Whether the card's weights are on this machine, and where they are (or how to get them)."""
    path = local_file(card)
    if path is not None:
        status = "shipped" if path.parent == repo_zoo_dir() else "cached"
        converted = cache_dir() / card.name / "converted" / "model.safetensors"
        if card.format == "original" and converted.is_file():
            return status, f"{path} (converted: {converted}, {converted.stat().st_size / 1e6:.1f} MB)"
        return status, str(path)
    if card.hf_repo is not None:
        return (
            "missing",
            f"hub {card.hf_repo} -> HF cache {hub_cache_dir()} (`clipseg zoo fetch {card.name}`)",
        )
    return "missing", f"put {card.filename} from {card.source} in {cache_dir() / card.name}/"


def cmd_list(args: argparse.Namespace) -> int:
    print(f"{'name':<22} {'format':<12} {'size':>8}  {'status':<8} where (description below)")
    for name, card in cards().items():
        size = f"{card.size_mb:.1f}MB" if card.size_mb else "-"
        status, where = _where(card)
        print(f"{name:<22} {card.format:<12} {size:>8}  {status:<8} {where}\n{'':<22} {card.description}")
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
        _, how = expected_sha256(card, path)
        try:
            digest = verify(card, path)
        except ZooError as err:
            print(f"{name}: FAILED: {err}")
            failed += 1
            continue
        print(f"{name}: OK {digest} ({how}) {path}")
    return 1 if failed else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        card = get_card(name)
        path = fetch(card, args.revision)
        print(f"{name}: sha256 {verify(card, path)} {path}")
    return 0


def _pack_name(args: argparse.Namespace) -> str:
    """``--name``, or the file name of a ``.safetensors`` ``--out`` (a folder needs ``--name`` to name the file)."""
    if args.name:
        return args.name
    if args.out.suffix == ".safetensors":
        return args.out.stem
    raise ValueError(f"--out {args.out} is a folder: pass --name NAME to name the file (NAME.safetensors)")


def cmd_pack(args: argparse.Namespace) -> int:
    from clipseg.training.pack import pack_checkpoint

    args.name = _pack_name(args)
    out = pack_checkpoint(args.ckpt, args.out, args.name)
    digest = sha256_of(out)
    size_mb = out.stat().st_size / 1e6
    print(f"packed {args.ckpt} -> {out} ({size_mb:.1f} MB, sha256 {digest})")
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


def cmd_push(args: argparse.Namespace) -> int:
    from clipseg.zoo.push import build_upload_folder, upload_folder

    if args.dry_run is not None:
        folder = build_upload_folder(
            args.file, args.repo, args.dry_run, license=args.license, zoo_cards=cards()
        )
        print(f"wrote {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))}); nothing uploaded")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_upload_folder(
            args.file, args.repo, Path(tmp) / "upload", license=args.license, zoo_cards=cards()
        )
        url = upload_folder(folder, args.repo, private=args.private)
    print(f"uploaded {args.file} to {url}; load it with clipseg.load_model({args.repo!r})")
    return 0


def _vocabulary(path: Path) -> tuple[str, ...]:
    """The words of the tokenizer a model file carries (a fixed-corpus one), else none."""
    from clipseg.core.tokenizer import read_tokenizer, vocabulary_words

    tokenizer = read_tokenizer(path)
    return tuple(vocabulary_words(tokenizer)) if tokenizer is not None else ()


def _shapes_quality(path: Path, scenes: int) -> dict[str, Any]:
    """``shapes-quality/...`` numbers of the model file at ``path``: means and worst seeds over
    ``clipseg.eval.quality.QUALITY_SEEDS``, ``scenes`` scenes each, with the seeds and scene count."""
    from clipseg.eval.quality import shapes_quality_over_seeds
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
    p = argparse.ArgumentParser(
        prog="clipseg zoo", description="Named pretrained models.", formatter_class=HelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, aliases=list(aliases), help=help_, description=help_, formatter_class=HelpFormatter
        )

    command("list", "every card, whether its file is here and where").set_defaults(run=cmd_list)
    v = command("verify", "check the sha256 of local files")
    v.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all)")
    v.set_defaults(run=cmd_verify)
    f = command("fetch", "download hub models into the HF cache, verify them, print where they are")
    f.add_argument("names", nargs="+", metavar="NAME", help="zoo names of hub models")
    f.add_argument("--revision", help=REVISION_HELP)
    f.set_defaults(run=cmd_fetch)
    # "export" is ONNX (`clipseg export onnx`); the checkpoint's packing kept its earlier name as an alias.
    e = command(
        "pack", "Lightning checkpoint -> zoo safetensors (updates the card when in zoo/)", aliases=("export",)
    )
    e.add_argument(
        "--ckpt",
        type=Path,
        required=True,
        metavar="FILE",
        help="checkpoint of `clipseg fit`, e.g. outputs/shapes-tiny/checkpoints/last.ckpt",
    )
    e.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help="zoo name stored in the file (default: the --out file's name)",
    )
    e.add_argument(
        "--out",
        type=Path,
        default=repo_zoo_dir(),
        metavar="PATH",
        help="folder or .safetensors file (default: zoo/)",
    )
    e.add_argument(
        "--quality-scenes",
        type=int,
        default=0,
        metavar="N",
        help="measure shapes quality (clipseg.eval.quality) on N fresh scenes of each of its seeds; "
        "recorded on the card when in zoo/",
    )
    e.set_defaults(run=cmd_pack)
    u = command("push", "upload a model file to the Hugging Face Hub with a generated model card")
    u.add_argument(
        "file", type=Path, metavar="FILE", help="model file of `clipseg fit` or `clipseg zoo pack`"
    )
    u.add_argument("--repo", required=True, metavar="ORG/NAME", help="hub repository (created if missing)")
    u.add_argument(
        "--license", metavar="ID", help="license id (default: the base zoo model's, e.g. mit, apache-2.0)"
    )
    u.add_argument("--private", action="store_true", help="create the repository as private")
    u.add_argument(
        "--dry-run",
        type=Path,
        metavar="DIR",
        help="write the upload folder (model + README.md) to DIR, upload nothing",
    )
    u.set_defaults(run=cmd_push)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ZooError, FileNotFoundError, OSError, ValueError) as err:
        print(f"clipseg zoo: error: {err}", file=sys.stderr)
        return 1
