"""``OnnxBackend``: an exported CLIPSeg (``clipseg export onnx``) on onnxruntime, without torch.

An export folder holds four graphs, the tokenizer and ``config.json`` (``ExportLayout`` names them):

- ``vision.onnx``: ``pixel_values`` ``B x 3 x H x W`` → per extracted layer ``k`` its CLS token
  ``layer{k}_cls`` ``B x 1 x C`` and patch tokens ``layer{k}_patches`` ``B x h x w x C`` (the patch
  grid is kept as two axes so that the decoder knows it for any image size);
- ``decoder.onnx``: those activations + ``conditionals`` ``N x D`` → ``logits`` ``B x N x hp x wp`` and
  ``pooled`` ``B x N x 3R`` (the summary a presence head reads; exports made before it lack it);
- ``text.onnx``: right-padded ``input_ids`` ``N x L`` → ``conditionals`` ``N x D``;
- ``visual.onnx``: the deepest layer's ``cls`` and ``patches`` of ``N`` support images → ``N x D``
  (the rest of the vision tower and CLIP's projection: visual prompts reuse ``vision.onnx``).

Batch, prompt count, token count and image size are dynamic axes of every graph.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipseg.core.config import PreprocessConfig
from clipseg.core.json_tokenizer import load_saved_tokenizer
from clipseg.core.prompts import tokenize_prompts
from clipseg.inference.upsample import resize_bilinear

FORMAT = "clipseg-onnx"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
TOKENIZER_DIR = "tokenizer"
GRAPHS = ("vision", "text", "visual", "decoder")


def cls_name(layer: int) -> str:
    return f"layer{layer}_cls"


def patches_name(layer: int) -> str:
    return f"layer{layer}_patches"


@dataclass(frozen=True)
class ExportLayout:
    """What ``config.json`` of an export folder records: the model's preprocessing and graph facts.

    Args:
        preprocessing: how images become ``pixel_values``.
        layers: number of extracted layers (inputs ``layer0`` .. of the decoder).
        deepest: index (in extract order) of the deepest extracted layer, the input of ``visual.onnx``.
        patch_size: the ViT patch size (the decoder's output is ``h * patch_size`` high).
        max_text_tokens: positions of the text tower (prompts are cut to fit).
        fixed_vocabulary: the tokenizer was built from a fixed corpus (``Backend.fixed_vocabulary``).
        quantize: ``"int8"`` for dynamically quantized graphs, else ``None``.
        source: the model name or path the export was made from, and its sha256.
        presence: the source file's presence calibration (``clipseg.inference.presence``, JSON), or "".
    """

    preprocessing: PreprocessConfig
    layers: int
    deepest: int
    patch_size: int
    max_text_tokens: int
    fixed_vocabulary: bool
    quantize: str | None = None
    source: str = ""
    source_sha256: str = ""
    presence: str = ""

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": FORMAT_VERSION, **self.__dict__}
        data["preprocessing"] = self.preprocessing.__dict__
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, folder: Path) -> ExportLayout:
        """The layout of an export ``folder``.

        Raises:
            ValueError: ``folder`` is not a complete export of this format (the message names what is missing).
        """
        config = folder / CONFIG_NAME
        missing = [f"{name}.onnx" for name in GRAPHS if not (folder / f"{name}.onnx").is_file()]
        if not config.is_file() or missing:
            what = ", ".join([*([CONFIG_NAME] if not config.is_file() else []), *missing])
            raise ValueError(
                f"{folder}: not a complete ONNX export (missing {what}); make one with "
                "`clipseg export onnx --model NAME --out DIR`"
            )
        data = json.loads(config.read_text())
        if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{config}: format {data.get('format')!r} version {data.get('version')!r}, expected "
                f"{FORMAT!r} version {FORMAT_VERSION}; export the model again with this clipseg"
            )
        fields = {k: v for k, v in data.items() if k not in ("format", "version")}
        return cls(**{**fields, "preprocessing": PreprocessConfig(**data["preprocessing"])})


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an ONNX export's ``config.json`` and ``vision.onnx``."""
    path = Path(path)
    return (path / CONFIG_NAME).is_file() and (path / "vision.onnx").is_file()


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module (imported on use: ``is_export_folder`` and the layout work without it).

    Raises:
        ModuleNotFoundError: it is not installed; the message says how to install it.
    """
    try:
        import onnxruntime
    except ImportError:
        raise ModuleNotFoundError(
            "the onnx backend needs onnxruntime: pip install 'clipseg[onnx]' (or onnxruntime)",
            name="onnxruntime",  # the `clipseg` command names the extra from it
        ) from None
    return onnxruntime


def session_options(threads: int | None = None) -> Any:
    """onnxruntime ``SessionOptions``: all graph optimisations; ``threads`` (default ``OMP_NUM_THREADS``
    if set, else onnxruntime's choice) threads inside each operator."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


class OnnxBackend:
    """An export folder on onnxruntime's CPU provider (``providers`` to choose others).

    ``encode_image`` returns the vision graph's outputs (a dict of numpy arrays), fed unchanged to the
    decoder graph for every set of prompts.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.layout = ExportLayout.read(self.folder)
        ort = import_onnxruntime()
        options = session_options(threads)
        self.sessions = {
            name: ort.InferenceSession(str(self.folder / f"{name}.onnx"), options, providers=list(providers))
            for name in GRAPHS
        }
        # Not transformers' AutoTokenizer: `import transformers` imports torch where it is installed.
        self.tokenizer = load_saved_tokenizer(self.folder / TOKENIZER_DIR)
        self.fixed_vocabulary = self.layout.fixed_vocabulary

    @property
    def preprocessing(self) -> PreprocessConfig:
        return self.layout.preprocessing

    def _run(self, graph: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[graph].run(None, inputs)

    def encode_image(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The vision activations of ``B x 3 x H x W`` pixels, by output name."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        session = self.sessions["vision"]
        names = [out.name for out in session.get_outputs()]
        return dict(zip(names, session.run(names, {"pixel_values": pixels})))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        encoded = tokenize_prompts(self.tokenizer, list(texts), max_length=self.layout.max_text_tokens)
        return self._run("text", {"input_ids": encoded["input_ids"].astype(np.int64)})[0]

    def encode_visual(self, pixels: np.ndarray) -> np.ndarray:
        features = self.encode_image(pixels)
        deepest = self.layout.deepest
        inputs = {"cls": features[cls_name(deepest)], "patches": features[patches_name(deepest)]}
        return self._run("visual", inputs)[0]

    def decode(self, features: dict[str, np.ndarray], conditionals: np.ndarray) -> np.ndarray:
        """``B x N x S x S`` float32 logits; resized bilinearly (as torch) where ``S`` is no multiple of the patch."""
        inputs = {**features, "conditionals": np.ascontiguousarray(conditionals, dtype=np.float32)}
        return self._resized(self.sessions["decoder"].run(["logits"], inputs)[0])

    def decode_pooled(
        self, features: dict[str, np.ndarray], conditionals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``decode``'s logits and the decoder graph's ``pooled`` output (``B x N x 3R``); None for an
        export made before the graph had it."""
        inputs = {**features, "conditionals": np.ascontiguousarray(conditionals, dtype=np.float32)}
        logits, *pooled = self._run("decoder", inputs)
        return self._resized(logits), (pooled[0] if pooled else None)

    def _resized(self, logits: np.ndarray) -> np.ndarray:
        """``B x N x h x w`` logits at the model's input size ``S x S``."""
        size = self.preprocessing.size
        if logits.shape[-2:] != (size, size):
            batch, prompts = logits.shape[:2]
            flat = resize_bilinear(logits.reshape(batch * prompts, *logits.shape[2:]), (size, size))
            logits = flat.reshape(batch, prompts, size, size)
        return logits
