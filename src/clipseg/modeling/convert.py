"""Converters from other CLIPSeg checkpoint layouts to ``ClipSeg`` (and safetensors).

- transformers (``CIDAS/clipseg-rd64``, ``-rd64-refined``, ``-rd16``): a folder with ``config.json`` and
  ``model.safetensors`` or ``pytorch_model.bin``; backbone and decoder weights are copied.
- the original repository (``rd64-uni.pth``, ``rd64-uni-refined.pth``, ``rd16-uni.pth``): decoder-only
  state dicts whose keys already match ``ClipSegDecoder`` (``reduce.*`` is an unused layer of the
  original class and is dropped); the CLIP backbone is loaded separately (ViT-B/16 for all three).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformers import CLIPConfig

from clipseg.core.config import ClipSegConfig, PreprocessConfig
from clipseg.core.errors import CheckpointError, UnsafeCheckpointError
from clipseg.modeling.backbone import compact_clip_config
from clipseg.modeling.clipseg import ClipSeg, load_state

if TYPE_CHECKING:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

ORIGINAL_BACKBONE = "openai/clip-vit-base-patch16"
ORIGINAL_EXTRACT_LAYERS = (3, 7, 9)
# Keys of the original files that are not part of the decoder: the unused `reduce` layer, and the CLIP
# weights (`clip_model.*`, `model.*`) that full training snapshots carry in OpenAI's layout.
_ORIGINAL_IGNORED_PREFIXES = ("reduce.", "clip_model.", "model.")
# Bookkeeping keys of transformers configs that have no meaning inside a CLIPConfig.
_HF_CONFIG_NOISE = ("model_type", "architectures", "_name_or_path", "transformers_version")


# ------------------------------------------------------------------------------------------ transformers


def clip_config_from_transformers(hf_config: CLIPSegConfig) -> dict[str, Any]:
    """The ``CLIPConfig`` dict of the CLIP model inside a transformers CLIPSeg (same towers, same keys)."""

    def tower(sub: Any) -> dict[str, Any]:
        return {k: v for k, v in sub.to_dict().items() if k not in _HF_CONFIG_NOISE}

    clip = CLIPConfig(
        text_config=tower(hf_config.text_config),
        vision_config=tower(hf_config.vision_config),
        projection_dim=hf_config.projection_dim,
        logit_scale_init_value=hf_config.logit_scale_init_value,
    )
    return compact_clip_config(clip)


def config_from_transformers(
    hf_config: CLIPSegConfig,
    *,
    backbone: str | None = None,
    preprocessing: PreprocessConfig | None = None,
) -> ClipSegConfig:
    """A ``ClipSegConfig`` equivalent to a transformers ``CLIPSegConfig``.

    The decoder activation is "relu" whatever ``hf_config.decoder_hidden_act`` says: transformers'
    ``CLIPSegDecoder`` hard-codes it. Dropout is 0 as in transformers. ``preprocessing`` (from the
    folder's processor config) sets the input size, filter, mean and std; by default the vision
    tower's size with bilinear resizing and CLIP's mean and std.
    """
    preprocessing = preprocessing or PreprocessConfig(size=hf_config.vision_config.image_size)
    return ClipSegConfig(
        backbone=backbone if backbone is not None else clip_config_from_transformers(hf_config),
        extract_layers=tuple(hf_config.extract_layers),
        reduce_dim=hf_config.reduce_dim,
        decoder_heads=hf_config.decoder_num_attention_heads,
        decoder_intermediate_size=hf_config.decoder_intermediate_size,
        decoder_hidden_act="relu",
        decoder_dropout=0.0,
        cond_layer=hf_config.conditional_layer,
        complex_trans_conv=hf_config.use_complex_transposed_convolution,
        image_size=preprocessing.size,
        image_resample=preprocessing.resample,
        image_mean=preprocessing.mean,
        image_std=preprocessing.std,
    )


def transformers_decoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a transformers ``CLIPSegDecoder`` state dict to ``ClipSegDecoder``'s (the original) layout.

    transformers splits each block's attention input projection into ``q_proj``/``k_proj``/``v_proj``;
    ``nn.TransformerEncoderLayer`` keeps them stacked in ``in_proj_weight`` / ``in_proj_bias`` (q, k, v).
    """
    renames = {
        "transposed_convolution.": "trans_conv.",
        "layers.": "blocks.",
        ".mlp.fc1.": ".linear1.",
        ".mlp.fc2.": ".linear2.",
        ".layer_norm1.": ".norm1.",
        ".layer_norm2.": ".norm2.",
    }
    out: dict[str, Tensor] = {}
    stacked: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        for old, new in renames.items():
            key = key.replace(old, new)
        module, _, leaf = key.rpartition(".")
        owner, _, proj = module.rpartition(".")
        if proj in {"q_proj", "k_proj", "v_proj"}:
            stacked.setdefault(f"{owner}.in_proj_{leaf}", {})[proj] = value
        else:
            out[key] = value
    for key, parts in stacked.items():
        if set(parts) != {"q_proj", "k_proj", "v_proj"}:
            raise CheckpointError(f"{key}: the checkpoint has only {sorted(parts)} of q_proj, k_proj, v_proj")
        out[key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]], dim=0)
    return out


def from_transformers(
    hf: CLIPSegForImageSegmentation,
    *,
    backbone: str | None = None,
    preprocessing: PreprocessConfig | None = None,
) -> ClipSeg:
    """A ``ClipSeg`` with copies of ``hf``'s CLIP and decoder weights.

    Args:
        hf: the transformers model.
        backbone: hub name / folder of the same CLIP weights; the model then references it by name
            (decoder-only checkpoints). By default the backbone is described by ``hf.config``.
        preprocessing: the input preprocessing (see ``config_from_transformers``).
    """
    config = config_from_transformers(hf.config, backbone=backbone, preprocessing=preprocessing)
    # The backbone is built from hf's architecture and receives hf's weights; a `backbone` name is only
    # recorded (for decoder-only saves), so it must name the same weights (as for CIDAS' models).
    model = ClipSeg(config, clip_config=clip_config_from_transformers(hf.config))
    load_state(model.backbone.clip, hf.clip.state_dict(), source="transformers CLIPSegModel")
    load_state(
        model.decoder, transformers_decoder_state(hf.decoder.state_dict()), source="transformers decoder"
    )
    return model.to(next(hf.parameters()).device)


def random_cidas_clipseg(*, seed: int = 0, tokenizer: Any = None) -> ClipSeg:
    """A randomly initialised CLIPSeg of the CIDAS architecture: transformers' ``CLIPSegConfig`` defaults
    with ViT-B/16 towers (patch 16), rd64, extract layers (3, 6, 9), 352 x 352 input as CIDAS' processor. No download:
    for speed and export checks of the real model's size (weights from ``torch.manual_seed(seed)``).

    ``tokenizer`` (e.g. one of ``build_clip_tokenizer``): its start and end token ids replace CLIP's,
    so that the text tower pools at that tokenizer's end token.
    """
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    text: dict[str, Any] = {}
    if tokenizer is not None:
        ends = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
        text = {**ends, "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id}
    torch.manual_seed(seed)
    hf = CLIPSegForImageSegmentation(CLIPSegConfig(text_config=text, vision_config={"patch_size": 16}))
    # CIDAS' preprocessor resizes to 352 (CLIP's 224 position grid is interpolated to 22 x 22).
    return from_transformers(hf.eval(), preprocessing=PreprocessConfig(size=352)).eval()


def processor_preprocessing(folder: Path) -> PreprocessConfig | None:
    """The preprocessing of a transformers folder's ``preprocessor_config.json`` (CIDAS: 352, bilinear), if any.

    Raises:
        CheckpointError: the file is not JSON or describes what CLIPSeg cannot do (names the file).
    """
    file = folder / "preprocessor_config.json"
    if not file.is_file():
        return None
    try:
        return PreprocessConfig.from_processor_config(json.loads(file.read_text()))
    except ValueError as err:
        raise CheckpointError(f"{file}: {err}") from None


def convert_transformers_checkpoint(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    backbone: str | None = None,
    use_safetensors: bool | None = None,
) -> ClipSeg:
    """Load a transformers CLIPSeg folder (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``).

    Args:
        folder: the checkpoint folder (e.g. a download of ``CIDAS/clipseg-rd64-refined``).
        out: if given, ``save_pretrained`` the converted model there.
        backbone: name of the identical CLIP weights (e.g. "openai/clip-vit-base-patch16") to reference
            instead of storing them; ``out`` then holds a decoder-only file.
        use_safetensors: read ``model.safetensors`` (True) or ``pytorch_model.bin`` (False, unpickled
            with ``weights_only=True``); by default ``model.safetensors`` whenever the folder has it.
    """
    from transformers import CLIPSegForImageSegmentation

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a transformers checkpoint folder (no config.json)")
    if use_safetensors is None:
        use_safetensors = (folder / "model.safetensors").is_file()
    hf = CLIPSegForImageSegmentation.from_pretrained(
        str(folder), use_safetensors=use_safetensors, weights_only=True
    ).eval()
    model = from_transformers(hf, backbone=backbone, preprocessing=processor_preprocessing(folder))
    if out is not None:
        model.save_pretrained(out)
    return model


# ------------------------------------------------------------------------------------------ original


def read_original_state(path: str | Path) -> dict[str, Tensor]:
    """Tensors of an original ``.pth`` file, loaded with ``weights_only=True``.

    Raises:
        UnsafeCheckpointError: the file needs arbitrary code to unpickle (refused, for safety).
    """
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it contains pickled code or objects beyond plain tensors, and "
            f"unpickling those can run arbitrary code. Only weights-only state dicts are accepted "
            f"(torch.load(..., weights_only=True)). Details: {str(err).splitlines()[0]}"
        ) from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors (got {type(state).__name__})")
    return dict(state)


def original_decoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The decoder part of an original state dict, in ``ClipSegDecoder``'s layout (same key names)."""
    return {k: v for k, v in state.items() if not k.startswith(_ORIGINAL_IGNORED_PREFIXES)}


def config_from_original(
    state: Mapping[str, Tensor],
    *,
    backbone: str | dict[str, Any],
    extract_layers: Sequence[int] = ORIGINAL_EXTRACT_LAYERS,
    decoder_heads: int = 4,
    image_size: int = 352,
) -> ClipSegConfig:
    """The ``ClipSegConfig`` of an original decoder state dict; widths and head type are read off the tensors.

    The extract layers and head count are not recorded in the files; the defaults are the paper's.
    """
    if "film_mul.weight" not in state or "blocks.0.linear1.weight" not in state:
        raise key_mismatch_hint(state)
    depth = len({k.split(".")[1] for k in state if k.startswith("reduces.")})
    if depth != len(extract_layers):
        raise CheckpointError(
            f"the checkpoint has {depth} decoder steps but extract_layers={tuple(extract_layers)} names "
            f"{len(extract_layers)}; pass matching extract_layers"
        )
    return ClipSegConfig(
        backbone=backbone,
        extract_layers=tuple(extract_layers),
        reduce_dim=state["film_mul.weight"].shape[0],
        decoder_heads=decoder_heads,
        decoder_intermediate_size=state["blocks.0.linear1.weight"].shape[0],
        decoder_hidden_act="relu",
        decoder_dropout=0.1,
        complex_trans_conv="trans_conv.0.weight" in state,
        image_size=image_size,
    )


def key_mismatch_hint(state: Mapping[str, Tensor]) -> CheckpointError:
    some = ", ".join(sorted(state)[:8])
    return CheckpointError(
        "this is not an original CLIPSeg decoder checkpoint: expected keys film_mul.*, film_add.*, "
        f"reduces.<i>.*, blocks.<i>.*, trans_conv.*; found {len(state)} keys such as: {some}"
    )


def convert_original_checkpoint(
    path: str | Path,
    *,
    backbone: str | dict[str, Any] = ORIGINAL_BACKBONE,
    out: str | Path | None = None,
    extract_layers: Sequence[int] = ORIGINAL_EXTRACT_LAYERS,
    decoder_heads: int = 4,
    image_size: int = 352,
) -> ClipSeg:
    """Load an original ``rd64-uni.pth`` / ``rd64-uni-refined.pth`` / ``rd16-uni.pth`` onto ``backbone``.

    Args:
        path: the ``.pth`` file (a decoder-only state dict).
        backbone: the CLIP the decoder was trained on (hub name or local folder of ViT-B/16).
        out: if given, ``save_pretrained`` the model there (a decoder-only safetensors file).
        extract_layers / decoder_heads / image_size: what the paper used, not stored in the file.

    Raises:
        UnsafeCheckpointError: the file needs code to unpickle.
        CheckpointError: the keys do not match (the error lists missing and unexpected ones).
    """
    state = original_decoder_state(read_original_state(path))
    config = config_from_original(
        state,
        backbone=backbone,
        extract_layers=extract_layers,
        decoder_heads=decoder_heads,
        image_size=image_size,
    )
    model = ClipSeg(config)
    load_state(model.decoder, state, source=str(path))
    if out is not None:
        model.save_pretrained(out)
    return model
