"""``clipseg zoo push FILE --repo org/name``: share a model file on the Hugging Face Hub.

The upload folder holds the file, unchanged, as ``model.safetensors`` (so ``load_model("org/name")``
finds it, and its sha256 stays the same) and a ``README.md`` model card written with
``huggingface_hub.ModelCard``: base model, training data, steps and validation metrics read from the
file's metadata, the license, and how to load it.

Metadata read (all optional except the config): ``clipseg_config`` (architecture), ``clipseg_name``
(the name given at ``clipseg zoo pack``), and ``clipseg_finetune``, a JSON object that ``clipseg fit`` writes at
the end of a fine-tuning run: ``base_model`` (its ``init_from``), ``data_dir``, ``steps``,
``val_metrics`` (``{"val/...": value}``) and ``val_step``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors import safe_open

from clipseg.core.config import ClipSegConfig
from clipseg.core.files import sha256_of
from clipseg.core.hub_access import hub_command, hub_offline, network_errors
from clipseg.modeling.clipseg import META_CONFIG, META_NAME, META_WEIGHTS, finetune_record
from clipseg.zoo.cards import ModelCard as ZooCard
from clipseg.zoo.errors import ZooError
from clipseg.zoo.hub import SAFETENSORS_NAME, is_repo_id

CARD_NAME = "README.md"


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of one of this project's model files (``ZooError`` for anything else)."""
    if not path.is_file():
        raise ZooError(
            f"{path}: no such file; pass a model file written by `clipseg fit` or `clipseg zoo pack`"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for any unreadable header
        raise ZooError(
            f"{path}: not a safetensors file ({err}); pack a checkpoint with `clipseg zoo pack`"
        ) from None
    if META_CONFIG not in metadata:
        raise ZooError(f"{path}: not a clipseg model file (no {META_CONFIG!r} in its metadata)")
    return metadata


def default_license(metadata: dict[str, str], zoo_cards: dict[str, ZooCard]) -> str | None:
    """The license of the zoo model this file was fine-tuned from (or is), if that is a zoo model."""
    for name in (finetune_record(metadata).get("base_model"), metadata.get(META_NAME)):
        if name in zoo_cards:
            return zoo_cards[name].license.lower()
    return None


def _hub_base_model(base: str | None, zoo_cards: dict[str, ZooCard]) -> str | None:
    """The hub repo id of the base model, for the card's ``base_model`` field (``None`` if not on the hub)."""
    if base in zoo_cards:
        return zoo_cards[base].hf_repo
    return base if base is not None and is_repo_id(base) else None


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join([*lines, *(f"| {k} | {v} |" for k, v in rows)])


def model_card(
    path: Path, repo_id: str, *, license: str, zoo_cards: dict[str, ZooCard]
) -> Any:  # huggingface_hub.ModelCard (imported lazily, like the rest of huggingface_hub)
    """The ``README.md`` model card of the model file ``path`` uploaded as ``repo_id``."""
    from huggingface_hub import ModelCard, ModelCardData

    metadata = read_metadata(path)
    config = ClipSegConfig.from_json(metadata[META_CONFIG])
    training = finetune_record(metadata)
    base = training.get("base_model")
    data = ModelCardData(
        license=license,
        library_name="clipseg",
        pipeline_tag="image-segmentation",
        tags=["clipseg", "image-segmentation", "referring-segmentation"],
        base_model=_hub_base_model(base, zoo_cards),
    )
    decoder_only = metadata.get(META_WEIGHTS) == "decoder"
    backbone = f"`{config.backbone}` (not stored)" if decoder_only else "stored in the file"
    not_recorded = "not recorded"
    facts = [
        ("Packed as", f"`{metadata[META_NAME]}`" if META_NAME in metadata else not_recorded),
        ("Base model", f"`{base}`" if base else not_recorded),
        ("Training data", f"`{training['data_dir']}`" if training.get("data_dir") else not_recorded),
        ("Training steps", str(training["steps"]) if "steps" in training else not_recorded),
        ("CLIP backbone", backbone),
        (
            "Decoder",
            f"reduce_dim {config.reduce_dim}, layers {list(config.extract_layers)}, input {config.image_size} px",
        ),
        ("File", f"`{SAFETENSORS_NAME}`, {path.stat().st_size / 1e6:.1f} MB, sha256 `{sha256_of(path)}`"),
    ]
    metrics = training.get("val_metrics") or {}
    at = f" (last validation, step {training['val_step']})" if training.get("val_step") is not None else ""
    metric_text = (
        _table([(k, f"{v:.4g}") for k, v in sorted(metrics.items())], ("metric", "value"))
        if metrics
        else "No validation metrics were recorded in the file."
    )
    body = f"""
# {repo_id}

A [CLIPSeg](https://arxiv.org/abs/2112.10003) model (Lüddecke & Ecker, CVPR 2022) in the `clipseg`
safetensors format: it segments images from text prompts or example images.

{_table(facts, ("", ""))}

## Metrics{at}

{metric_text}

## How to load

```python
import clipseg

predictor = clipseg.load_model("{repo_id}")
masks = predictor.predict("photo.jpg", ["a red circle"])  # N x H x W probabilities in [0, 1]
```

```bash
clipseg predict photo.jpg --prompt "a red circle" --model {repo_id}
```

The file lands in the standard Hugging Face cache; with `HF_HUB_OFFLINE=1` it loads from there.

## License

`{license}`
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def build_upload_folder(
    path: Path, repo_id: str, out: Path, *, license: str | None, zoo_cards: dict[str, ZooCard]
) -> Path:
    """Write ``out/model.safetensors`` (a byte copy of ``path``) and ``out/README.md``; returns ``out``.

    ``out`` must not exist or be empty; it is written in a temporary folder next to it and renamed,
    so an error leaves nothing behind.
    """
    if not is_repo_id(repo_id):
        raise ZooError(f"--repo {repo_id!r} is not a hub repo id; use org/name (e.g. someone/my-clipseg)")
    license = license or default_license(read_metadata(path), zoo_cards)
    if license is None:
        raise ZooError(f"{path}: its base model's license is unknown; pass --license (e.g. mit, apache-2.0)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ZooError(f"{out} already exists and is not an empty folder; pass a new folder")
    card = model_card(path, repo_id, license=license, zoo_cards=zoo_cards)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        shutil.copyfile(path, tmp / SAFETENSORS_NAME)
        card.save(tmp / CARD_NAME)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def upload_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` to it; returns the repository's URL.

    Raises:
        ZooError: offline (``HF_HUB_OFFLINE``, no network) or refused by the hub; nothing is uploaded.
    """
    later = f"write the folder with --dry-run DIR and upload it later with `{hub_command(f'upload {repo_id} DIR')}`"
    if hub_offline():
        raise ZooError(
            f"cannot upload to {repo_id}: HF_HUB_OFFLINE is set, nothing was uploaded; unset it, or {later}"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload clipseg model")
    except network_errors():
        raise ZooError(
            f"cannot upload to {repo_id}: the hub cannot be reached (no network?); {later}"
        ) from None
    except HfHubHTTPError as err:
        reason = str(err).splitlines()[0]
        raise ZooError(
            f"the hub refused the upload to {repo_id} ({reason}); log in with `{hub_command('auth login')}`"
        ) from None
    return str(url)
