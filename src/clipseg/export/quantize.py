"""int8 dynamic quantization of an ONNX export (onnxruntime's quantization tool, no torch).

``quantize_dynamic`` stores the weights of MatMul layers as int8 and quantizes their inputs to uint8
on each call. Two rewrites first put every linear layer of our graphs within its reach (see
``constants_to_initializers`` and ``fold_gemm_scales``).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from clipseg.backends.onnx import CONFIG_NAME, GRAPHS, TOKENIZER_DIR, ExportLayout

QUANTIZE_MODES = ("int8",)


def constants_to_initializers(model: onnx.ModelProto) -> None:
    """Turn tensor ``Constant`` nodes into initializers (in place): the quantizer reads weights from
    initializers only, and weights built at trace time (the CLIP blocks' stacked q/k/v) arrive as
    Constant nodes."""
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def fold_gemm_scales(model: onnx.ModelProto) -> int:
    """Fold ``alpha`` / ``beta`` of Gemm nodes with constant B (and C, where ``beta != 1``) into new,
    scaled copies of those tensors (in place; weights shared with other nodes stay as they are).

    onnxruntime's dynamic quantization quantizes MatMul only; it turns a Gemm into MatMul + Add first,
    but only when ``alpha == beta == 1``. The CLIP blocks' quick-GELU path (``FastClipBlocks``) scales
    its Gemms by 1.702, so without this fold half of their linear layers would stay fp32.
    Returns the number of Gemm nodes changed.
    """
    initializers = {init.name: init for init in model.graph.initializer}
    # torch's exporter shares identical weights (e.g. the zero biases of a random model) via Identity.
    aliases = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}

    def constant(name: str) -> onnx.TensorProto | None:
        while name in aliases:
            name = aliases[name]
        return initializers.get(name)

    changed = 0
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        scales = {1: attrs["alpha"].f if "alpha" in attrs else 1.0}
        if len(node.input) > 2 and node.input[2]:
            scales[2] = attrs["beta"].f if "beta" in attrs else 1.0
        if node.op_type != "Gemm" or all(scale == 1.0 for scale in scales.values()):
            continue
        sources = {index: constant(node.input[index]) for index, scale in scales.items() if scale != 1.0}
        if any(source is None for source in sources.values()):
            continue
        for index, source in sources.items():
            scaled = numpy_helper.to_array(source) * np.float32(scales[index])
            name = f"{node.name}_{source.name}_scaled"
            model.graph.initializer.append(numpy_helper.from_array(scaled.astype(np.float32), name))
            node.input[index] = name
        for name in ("alpha", "beta"):
            if name in attrs:
                attrs[name].f = 1.0
        changed += 1
    return changed


def quantize_int8(folder: Path, out: Path) -> None:
    """Dynamic int8 quantization (onnxruntime) of every graph's linear layers, ``folder`` → ``out``.

    Weights become int8 (per tensor, signed); activations are quantized to uint8 on each call.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises its shape-inference pre-pass, which dynamic axes defeat
    try:
        for name in GRAPHS:
            model = onnx.load(str(folder / f"{name}.onnx"))
            constants_to_initializers(model)
            fold_gemm_scales(model)
            quantize_dynamic(
                model, out / f"{name}.onnx", op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8
            )
    finally:
        root.setLevel(level)


def quantize_export(folder: Path, out: Path) -> None:
    """An int8 copy (``quantize_int8``) of the fp32 export ``folder`` in the new folder ``out``."""
    layout = ExportLayout.read(folder)
    if layout.quantize is not None:
        raise ValueError(f"{folder} is already quantized ({layout.quantize}); quantize an fp32 export")
    shutil.copytree(folder / TOKENIZER_DIR, out / TOKENIZER_DIR)
    (out / CONFIG_NAME).write_text(dataclasses.replace(layout, quantize="int8").to_json())
    quantize_int8(folder, out)
