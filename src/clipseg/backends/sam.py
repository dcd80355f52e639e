"""``refine="sam"``: Segment Anything (transformers ``SamModel``) prompted with each CLIPSeg mask's box.

CLIPSeg knows *what* the prompt refers to but draws it coarsely; SAM draws sharp object masks but
needs to be told where. Each prompt's CLIPSeg mask (probability >= 0.5) gives a bounding box, SAM
segments inside it, and its mask probabilities replace CLIPSeg's. A prompt whose mask is empty has
nothing to point SAM at and keeps CLIPSeg's probabilities. This module imports torch (it runs a
model); the numpy refinements live in ``clipseg.inference.refine``.
"""

from __future__ import annotations

import numpy as np
import torch

THRESHOLD = 0.5


def mask_boxes(probs: np.ndarray, threshold: float = THRESHOLD) -> list[list[float] | None]:
    """``[x0, y0, x1, y1]`` (pixel edges) of each ``N x H x W`` mask above ``threshold``; ``None`` if empty."""
    boxes: list[list[float] | None] = []
    for prob in probs:
        ys, xs = np.nonzero(prob >= threshold)
        boxes.append(
            None if ys.size == 0 else [float(xs.min()), float(ys.min()), xs.max() + 1.0, ys.max() + 1.0]
        )
    return boxes


class SamRefiner:
    """A transformers ``SamModel`` with its ``SamProcessor``, called as ``refiner(image, probs)``.

    Args:
        model: ``transformers.SamModel``.
        processor: ``transformers.SamProcessor`` matching the model's input size.
        device: where SAM runs (default: the model's device).
    """

    def __init__(self, model, processor, *, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.processor = processor

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str | torch.device | None = None) -> SamRefiner:
        """Load a SAM checkpoint (a local folder, or a hub name such as ``facebook/sam-vit-base``)."""
        from transformers import SamModel, SamProcessor

        try:
            model, processor = (
                SamModel.from_pretrained(name_or_path),
                SamProcessor.from_pretrained(name_or_path),
            )
        except (OSError, ValueError) as err:  # missing files; a path that is not a hub name either
            raise ValueError(
                f"cannot load the SAM model {name_or_path!r}: {str(err).splitlines()[0]}"
            ) from err
        return cls(model, processor, device=device)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """``N x H x W`` probabilities: SAM's inside each mask's box, CLIPSeg's where a mask is empty.

        Args:
            image: ``H x W x 3`` uint8.
            probs: ``N x H x W`` CLIPSeg probabilities at the image's size.
        """
        boxes = mask_boxes(probs)
        present = [i for i, box in enumerate(boxes) if box is not None]
        if not present:
            return probs
        inputs = self.processor(images=image, input_boxes=[[boxes[i] for i in present]], return_tensors="pt")
        outputs = self.model(
            pixel_values=inputs["pixel_values"].to(self.device),
            input_boxes=inputs["input_boxes"].to(self.device),
            multimask_output=False,
        )
        logits = self.processor.image_processor.post_process_masks(
            outputs.pred_masks.float().cpu(),
            inputs["original_sizes"],
            inputs["reshaped_input_sizes"],
            binarize=False,
        )[0][:, 0]  # len(present) x H x W
        refined = probs.copy()
        refined[present] = torch.sigmoid(logits).numpy()
        return refined
