"""``Segmenter``: clipseg as a callable class for Ray Data's ``map_batches`` (one model per actor).

    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True)
    masks = ds.map_batches(
        Segmenter, fn_constructor_args=("shapes-tiny", ["red square"]), fn_constructor_kwargs={"threshold": 0.4},
        batch_size=8, compute=ray.data.ActorPoolStrategy(size=4),
    )
    masks.write_parquet("s3://bucket/masks/")

Masking is ``BulkMasker.mask_images`` (the post-processing, presence and scores of ``clipseg
predict``); each row gets COCO RLE masks (pycocotools), the image itself does not go out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from clipseg.core.images import ImageError, load_image
from clipseg.core.prompts import PromptLike, as_prompt
from clipseg.inference.bulk import BulkMasker, Masked
from clipseg.inference.postprocess import PostProcess
from clipseg.inference.runs import MaskOptions
from clipseg.inference.writers import mask_rle

MASK = pa.struct(
    [
        ("prompt", pa.string()),
        ("rle", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])),
        ("area", pa.float64()),
        ("score", pa.float64()),
    ]
)
SCHEMA = pa.schema([("path", pa.string()), ("masks", pa.list_(MASK)), ("error", pa.string())])


class Segmenter:
    """Masks for a batch of images, as ``ray.data.Dataset.map_batches`` calls it.

    Args:
        model: zoo name, path, hub id or ONNX export folder (``clipseg.load_model``).
        prompts: text prompts (or ``Prompt``s), in the order of each row's ``masks``.
        threshold: binarisation of the RLE masks (None: 0.5, and no threshold in the post-processing).
        backend: "torch" or "onnx" (default: onnx for an ONNX export folder, else torch, as
            ``load_model``); ``quantize="int8"`` with onnx.
        device: torch device (default: cuda when the actor has a GPU).
        batch_size: images per model call within a Ray batch.
        **postprocess: the other ``PostProcess`` fields (``negative``, ``combine``, ``erode``, ...).

    Input batch: ``image`` (``H x W x C`` arrays, as ``ray.data.read_images``) and ``path``, or ``path``
    alone (read here; any pyarrow file system URI such as ``s3://``). Output: ``path``; ``masks``, one
    ``{"prompt", "rle": {"size": [h, w], "counts"}, "area", "score"}`` per output mask in prompt order
    (``area``: fraction of pixels in the mask; ``score``: highest probability, as ``clipseg predict``'s
    COCO scores); ``error``: None, or why the row's image could not be read (then ``masks`` is empty).
    """

    def __init__(
        self,
        model: str,
        prompts: Sequence[PromptLike],
        *,
        threshold: float | None = None,
        backend: str | None = None,
        device: str | None = None,
        quantize: str | None = None,
        batch_size: int = 8,
        **postprocess: object,
    ) -> None:
        from clipseg.zoo import load_model

        options = MaskOptions(
            postprocess=PostProcess(threshold=threshold, **postprocess), batch_size=batch_size
        )
        predictor = load_model(model, device=device, backend=backend, quantize=quantize)
        self.masker = BulkMasker(predictor, prompts, options)
        self.labels = options.postprocess.labels([as_prompt(p).label for p in prompts])

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        paths = [str(p) for p in batch["path"]]
        images: dict[int, np.ndarray] = {}
        errors: list[str | None] = [None] * len(paths)
        for i, path in enumerate(paths):
            try:
                images[i] = load_image(batch["image"][i], name=path) if "image" in batch else _read(path)
            except (ImageError, OSError, ValueError) as err:
                errors[i] = str(err) if path in str(err) else f"{path}: {err}"
        masks: list[list[dict]] = [[] for _ in paths]
        size = self.masker.options.batch_size
        order = list(images)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            for i, masked in zip(chunk, self.masker.mask_images([images[i] for i in chunk])):
                masks[i] = self._rows(masked)
        return pa.Table.from_pydict({"path": paths, "masks": masks, "error": errors}, schema=SCHEMA)

    def _rows(self, masked: Masked) -> list[dict]:
        cut = self.masker.options.postprocess.cut
        return [
            {
                "prompt": label,
                "rle": mask_rle(mask >= cut),
                "area": float((mask >= cut).mean()),
                "score": score,
            }
            for label, mask, score in zip(self.labels, masked.masks, masked.scores)
        ]


def _read(path: str) -> np.ndarray:
    """An image by path or URI (``s3://``, ``gs://``, ... through pyarrow's file systems), decoded
    within the pixel limit of ``clipseg.core.images``."""
    if "://" not in path:
        return load_image(path)
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path)
    with filesystem.open_input_file(inner) as stream:
        return load_image(stream.read(), name=path)
