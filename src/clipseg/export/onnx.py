"""Export a ``ClipSeg`` model to four ONNX graphs for ``clipseg.backends.onnx`` (torch needed here only).

Each graph is a small torch wrapper around the model's own methods, traced by torch's ONNX exporter
(``torch.onnx.export``) with dynamic axes, and checked in onnxruntime against torch on inputs of
other sizes than the traced ones (another batch, prompt count, token count and a non-square image).
``quantize="int8"`` then quantizes them (``clipseg.export.quantize``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from clipseg.backends.onnx import (
    CONFIG_NAME,
    FORMAT,
    GRAPHS,
    TOKENIZER_DIR,
    ExportLayout,
    OnnxBackend,
    cls_name,
    patches_name,
)
from clipseg.export.quantize import QUANTIZE_MODES, quantize_export
from clipseg.modeling import ClipSeg

OPSET = 17
# Largest |torch - onnxruntime| an fp32 graph may show on the check inputs (probabilities reach 1e-4
# only through logits differing by 4e-4; activations are compared relative to their scale).
CHECK_TOLERANCE = 1e-4


def _split(activation: Tensor, grid: tuple[Tensor | int, Tensor | int]) -> tuple[Tensor, Tensor]:
    """``B x (1 + h * w) x C`` → CLS ``B x 1 x C`` and patches ``B x h x w x C``."""
    return activation[:, :1], activation[:, 1:].unflatten(1, grid)


def _join(cls: Tensor, patches: Tensor) -> Tensor:
    """Inverse of ``_split``."""
    return torch.cat([cls, patches.flatten(1, 2)], dim=1)


class VisionGraph(nn.Module):
    """``pixel_values`` ``B x 3 x H x W`` → per extracted layer its CLS ``B x 1 x C`` and patches ``B x h x w x C``."""

    def __init__(self, model: ClipSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, ...]:
        patch = self.model.patch_size
        grid = (pixel_values.shape[2] // patch, pixel_values.shape[3] // patch)
        return tuple(t for act in self.model.encode_image(pixel_values) for t in _split(act, grid))


class TextGraph(nn.Module):
    """Right-padded ``input_ids`` ``N x L`` → ``N x D`` conditionals (the causal text tower needs no mask)."""

    def __init__(self, model: ClipSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.model.encode_text(input_ids)


class VisualGraph(nn.Module):
    """The deepest extracted layer's ``cls`` and ``patches`` of ``N`` support images → ``N x D`` conditionals."""

    def __init__(self, model: ClipSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, cls: Tensor, patches: Tensor) -> Tensor:
        deepest = max(self.model.config.extract_layers)
        return self.model.backbone.encode_image_from(_join(cls, patches), after=deepest)


class DecoderGraph(nn.Module):
    """Every layer's ``cls`` and ``patches`` (``VisionGraph``'s outputs) and ``N x D`` conditionals →
    ``B x N x (h * patch) x (w * patch)`` logits and the ``B x N x 3R`` pooled summary presence reads."""

    def __init__(self, model: ClipSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        *layers, conditionals = inputs
        pairs = list(zip(layers[::2], layers[1::2]))
        height, width = pairs[0][1].shape[1:3]
        patch = self.model.patch_size
        return self.model.decoder(
            [_join(cls, patches) for cls, patches in pairs],
            conditionals,
            grid=(height, width),
            out_size=(height * patch, width * patch),
            pooled=True,
        )


def layout_of(model: ClipSeg, tokenizer: PreTrainedTokenizerBase, **source: str) -> ExportLayout:
    extract = model.config.extract_layers
    return ExportLayout(
        preprocessing=model.config.preprocessing,
        layers=len(extract),
        deepest=extract.index(max(extract)),
        patch_size=model.patch_size,
        max_text_tokens=min(model.max_text_tokens, tokenizer.model_max_length),
        fixed_vocabulary=model.config.backbone_is_random,
        **source,
    )


def _activation_names(layers: int) -> list[str]:
    return [name for k in range(layers) for name in (cls_name(k), patches_name(k))]


def _activation_axes(layers: int) -> dict[str, dict[int, str]]:
    axes = {}
    for k in range(layers):
        axes[cls_name(k)] = {0: "batch"}
        axes[patches_name(k)] = {0: "batch", 1: "grid_height", 2: "grid_width"}
    return axes


def _sample_inputs(
    model: ClipSeg, *, batch: int, prompts: int, tokens: int, size: tuple[int, int], seed: int
) -> dict[str, Tensor]:
    """Random inputs of every graph: pixels, right-padded token ids (end token placed), conditionals."""
    generator = torch.Generator().manual_seed(seed)
    text_config = model.backbone.clip.config.text_config
    ids = torch.randint(0, text_config.eos_token_id, (prompts, tokens), generator=generator)
    ends = torch.randint(1, tokens, (prompts,), generator=generator)
    for row, end in zip(ids, ends):
        row[end:] = text_config.eos_token_id
    return {
        "pixel_values": torch.randn(batch, 3, *size, generator=generator),
        "input_ids": ids,
        "conditionals": torch.randn(prompts, model.prompt_dim, generator=generator),
    }


def _export(module: nn.Module, args: tuple[Tensor, ...], path: Path, **names: object) -> None:
    with warnings.catch_warnings():
        # The TorchScript-based exporter (deprecated, still in torch 2.13) traces the lean inference
        # paths as they run. torch.export's (dynamo=True) fails on them with dynamic axes: it cannot
        # read the data pointers that key FastClipBlocks' stacked q/k/v cache.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, **names)


@torch.no_grad()
def export_graphs(model: ClipSeg, folder: Path, *, bar: tqdm | None = None) -> None:
    """Trace the four graphs of ``model`` into ``folder`` (fp32), on inputs with distinct axis sizes
    (``bar`` advances once per graph)."""
    model = model.cpu().float().eval()
    layers = len(model.config.extract_layers)
    patch = model.patch_size
    sample = _sample_inputs(model, batch=2, prompts=3, tokens=7, size=(3 * patch, 4 * patch), seed=0)
    acts = VisionGraph(model)(sample["pixel_values"])
    names = _activation_names(layers)
    extract = model.config.extract_layers
    deepest = extract.index(max(extract))
    prompts = {0: "prompts"}
    graphs = {  # name: (wrapper, traced inputs, input names, output names, dynamic axes)
        "vision": (
            VisionGraph(model),
            (sample["pixel_values"],),
            ["pixel_values"],
            names,
            {"pixel_values": {0: "batch", 2: "height", 3: "width"}, **_activation_axes(layers)},
        ),
        "text": (
            TextGraph(model),
            (sample["input_ids"],),
            ["input_ids"],
            ["conditionals"],
            {"input_ids": {0: "prompts", 1: "tokens"}, "conditionals": prompts},
        ),
        "visual": (
            VisualGraph(model),
            (acts[2 * deepest], acts[2 * deepest + 1]),
            ["cls", "patches"],
            ["conditionals"],
            {
                "cls": prompts,
                "patches": {0: "prompts", 1: "grid_height", 2: "grid_width"},
                "conditionals": prompts,
            },
        ),
        "decoder": (
            DecoderGraph(model),
            (*acts, sample["conditionals"]),
            [*names, "conditionals"],
            ["logits", "pooled"],
            {
                **_activation_axes(layers),
                "conditionals": prompts,
                "logits": {0: "batch", 1: "prompts", 2: "height", 3: "width"},
                "pooled": {0: "batch", 1: "prompts"},
            },
        ),
    }
    for name, (wrapper, args, inputs, outputs, axes) in graphs.items():
        if bar is not None:
            bar.set_postfix_str(f"{name}.onnx")
        _export(
            wrapper,
            args,
            folder / f"{name}.onnx",
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
        )
        if bar is not None:
            bar.update()


def _max_diff(got: np.ndarray, want: Tensor) -> float:
    if got.shape != tuple(want.shape):
        raise RuntimeError(f"onnxruntime gave shape {got.shape}, torch {tuple(want.shape)}")
    return float(np.abs(got - want.numpy()).max())


@torch.no_grad()
def check_graphs(
    model: ClipSeg, backend: OnnxBackend, *, tolerance: float = CHECK_TOLERANCE
) -> dict[str, float]:
    """Max abs difference onnxruntime vs torch per graph on inputs other than the traced ones
    (1 image of 5 x 2 patches, 1 prompt of 4 tokens; then 3 images, 5 prompts, 9 tokens, 2 x 3 patches).

    Raises:
        RuntimeError: a graph differs by more than ``tolerance`` (relative to the output's scale for
            the activations and embeddings, absolute for the logits).
    """
    model = model.cpu().float().eval()
    patch = model.patch_size
    diffs: dict[str, float] = {}
    for seed, (batch, prompts, tokens, grid) in enumerate([(1, 1, 4, (5, 2)), (3, 5, 9, (2, 3))]):
        sample = _sample_inputs(
            model,
            batch=batch,
            prompts=prompts,
            tokens=tokens,
            size=(grid[0] * patch, grid[1] * patch),
            seed=seed + 1,
        )
        pixels = sample["pixel_values"]
        features = backend.encode_image(pixels.numpy())
        acts = VisionGraph(model)(pixels)
        scale = max(float(a.abs().max()) for a in acts)
        got = [features[name] for name in _activation_names(len(model.config.extract_layers))]
        checks = {"vision": max(_max_diff(g, w) for g, w in zip(got, acts)) / scale}
        text = model.encode_text(sample["input_ids"])
        got_text = backend.sessions["text"].run(None, {"input_ids": sample["input_ids"].numpy()})[0]
        checks["text"] = _max_diff(got_text, text) / float(text.abs().max())
        visual = model.encode_visual_prompt(pixels)
        checks["visual"] = _max_diff(backend.encode_visual(pixels.numpy()), visual) / float(
            visual.abs().max()
        )
        logits, pooled = DecoderGraph(model)(*acts, sample["conditionals"])
        inputs = {**features, "conditionals": sample["conditionals"].numpy()}
        got_logits, got_pooled = backend.sessions["decoder"].run(None, inputs)
        checks["decoder"] = max(_max_diff(got_logits, logits), _max_diff(got_pooled, pooled))
        for name, diff in checks.items():
            diffs[name] = max(diff, diffs.get(name, 0.0))
    bad = {name: diff for name, diff in diffs.items() if diff > tolerance}
    if bad:
        raise RuntimeError(f"ONNX graphs differ from torch beyond {tolerance}: {bad}")
    return diffs


def _written_by_export(name: str) -> bool:
    return name in (CONFIG_NAME, TOKENIZER_DIR) or name in {f"{graph}.onnx" for graph in GRAPHS}


def check_out_folder(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` that an export would lose data in: a file, or a folder with other things in it.

    An empty or missing folder is written; with ``overwrite``, so is an earlier export (its
    ``config.json`` names this format) holding nothing but what an export writes. A folder of anything
    else is never deleted, whatever ``overwrite`` says.

    Raises:
        ValueError: ``out`` is a file, or a non-empty folder that may not be replaced (the message says why).
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a folder (the export writes several files)")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"--out {out} exists and is not empty; pass --overwrite or another folder")
    try:
        earlier = json.loads((out / CONFIG_NAME).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):  # no config.json, not JSON, not an object
        earlier = False
    if not earlier:
        raise ValueError(
            f"--out {out} is not an earlier ONNX export (no {CONFIG_NAME} of format {FORMAT!r}); "
            "--overwrite replaces only an export: name an empty or new folder"
        )
    foreign = [name for name in entries if not _written_by_export(name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ValueError(
            f"--out {out} holds files an export did not write ({shown}); move them away or name another folder"
        )


def export_onnx(
    model: ClipSeg,
    tokenizer: PreTrainedTokenizerBase,
    out: str | Path,
    *,
    quantize: str | None = None,
    source: str = "",
    source_sha256: str = "",
    presence: str = "",
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Write ``out``: ``vision / text / visual / decoder.onnx``, ``config.json`` and ``tokenizer/``.
    ``presence`` (the source's presence calibration, JSON) travels in ``config.json``.

    The fp32 graphs are checked against torch (``check_graphs``) before anything is written; ``out``
    appears complete or not at all. ``progress`` shows a bar over the steps. Returns the checked max differences per graph.

    Raises:
        ValueError: an unknown ``quantize`` mode, or ``out`` may not be written (``check_out_folder``).
        RuntimeError: the exported graphs disagree with torch.
    """
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize {quantize!r}: use one of {', '.join(QUANTIZE_MODES)} (or none)")
    out = Path(out)
    check_out_folder(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    layout = layout_of(model, tokenizer, source=source, source_sha256=source_sha256, presence=presence)
    steps = len(GRAPHS) + 1 + (quantize is not None)
    with (
        tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp,
        tqdm(total=steps, desc="export onnx", disable=not progress) as bar,
    ):
        final = fp32 = Path(tmp) / "fp32"
        fp32.mkdir()
        tokenizer.save_pretrained(str(fp32 / TOKENIZER_DIR))
        (fp32 / CONFIG_NAME).write_text(layout.to_json())
        export_graphs(model, fp32, bar=bar)
        bar.set_postfix_str("check in onnxruntime")
        diffs = check_graphs(model, OnnxBackend(fp32))
        bar.update()
        if quantize == "int8":
            bar.set_postfix_str("int8")
            final = Path(tmp) / "int8"
            quantize_export(fp32, final)
            bar.update()
        if out.exists():
            shutil.rmtree(out)
        final.rename(out)
    return diffs
