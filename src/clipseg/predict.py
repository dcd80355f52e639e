"""Inference API: ``Predictor.predict(image, prompts) -> N x H x W`` probabilities at the image's resolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clipseg.images import ImageLike, load_image, load_mask
from clipseg.inference import tiles as tiles_module
from clipseg.inference.refine import REFINE_MODES
from clipseg.inference.refine import refine as refine_probs
from clipseg.modeling import ClipSeg
from clipseg.prompts import mix_conditionals, tokenize_prompts, visual_prompt


@dataclass(frozen=True)
class Prompt:
    """One prompt: text, a support image (optionally with the object's mask), or both mixed.

    With both, the conditional is ``weight * text + (1 - weight) * visual`` (paper Sec. 3).
    ``name`` labels the support image in overlays and summaries (default: its file name).
    """

    text: str | None = None
    image: ImageLike | None = None
    mask: ImageLike | None = None
    weight: float = 0.5
    name: str | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.image is None:
            raise ValueError("a Prompt needs text, an image, or both")
        if self.text is not None and not self.text.strip():
            raise ValueError("empty prompt text")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"prompt weight must be in [0, 1], got {self.weight}")

    @property
    def label(self) -> str:
        if self.image is None:
            return str(self.text)
        name = self.name or (Path(self.image).name if isinstance(self.image, (str, Path)) else "image prompt")
        return f"{self.text} + {name} (w={self.weight:g})" if self.text else name


PromptLike = str | Prompt | Path | Image.Image | np.ndarray | tuple


def as_prompt(prompt: PromptLike) -> Prompt:
    """Plain strings are text; paths, PIL images and arrays are support images; ``(image, mask)`` pairs too."""
    if isinstance(prompt, Prompt):
        return prompt
    if isinstance(prompt, str):
        return Prompt(text=prompt)
    if isinstance(prompt, tuple) and len(prompt) == 2:
        return Prompt(image=prompt[0], mask=prompt[1])
    if isinstance(prompt, (Path, Image.Image, np.ndarray)):
        return Prompt(image=prompt)
    raise TypeError(f"unsupported prompt type {type(prompt).__name__}")


class Predictor:
    """A ``ClipSeg`` model with its tokenizer and preprocessing, ready for images from users."""

    def __init__(
        self, model: ClipSeg, tokenizer, *, device: str | torch.device | None = None, name: str = ""
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        # refine="sam" runs this (a clipseg.sam_refine.SamRefiner); None until a user sets one.
        self.sam = None
        cfg = model.config
        self.image_size = cfg.image_size
        self._mean = torch.tensor(cfg.image_mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.image_std, device=self.device).view(1, 3, 1, 1)

    def _pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """``B x 3 x S x S`` normalised model input from ``H x W x 3`` uint8 arrays (square resize, as CLIPSeg)."""
        size = (self.image_size, self.image_size)
        batch = [np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC)) for img in images]
        x = torch.from_numpy(np.stack(batch)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        return (x - self._mean) / self._std

    @torch.inference_mode()
    def embed_prompts(self, prompts: Sequence[PromptLike]) -> torch.Tensor:
        """``N x D`` conditionals for ``prompts``: text encoded in one batch, support images in another."""
        items = [as_prompt(p) for p in prompts]
        if not items:
            raise ValueError("empty prompt list: pass at least one prompt")
        dim = self.model.prompt_dim
        text = torch.zeros(len(items), dim, device=self.device)
        visual = torch.zeros(len(items), dim, device=self.device)
        text_idx = [i for i, p in enumerate(items) if p.text is not None]
        image_idx = [i for i, p in enumerate(items) if p.image is not None]
        if text_idx:
            enc = tokenize_prompts(self.tokenizer, [items[i].text for i in text_idx])
            text[text_idx] = self.model.encode_text(**{k: v.to(self.device) for k, v in enc.items()})
        if image_idx:
            supports = []
            for i in image_idx:
                img = load_image(items[i].image, name=f"prompt {i}")
                if items[i].mask is not None:
                    mask = load_mask(items[i].mask, name=f"prompt {i} mask")
                    if mask.shape != img.shape[:2]:
                        raise ValueError(
                            f"prompt {i}: mask {mask.shape} and image {img.shape[:2]} differ in size"
                        )
                    img = visual_prompt(img, mask, self.image_size)
                supports.append(img)
            visual[image_idx] = self.model.encode_visual_prompt(self._pixels(supports))
        weight = torch.tensor(
            [
                p.weight if p.text is not None and p.image is not None else float(p.text is not None)
                for p in items
            ],
            device=self.device,
        )
        return mix_conditionals(text, visual, weight)

    @torch.inference_mode()
    def _tiled(self, image: np.ndarray, conditionals: torch.Tensor, batch_size: int) -> np.ndarray:
        """``N x H x W`` probabilities blended from full-resolution windows of the model's input size."""
        side = self.image_size
        boxes = tiles_module.tile_boxes(*image.shape[:2], side)
        probs = []
        for start in range(0, len(boxes), batch_size):
            crops = [image[y : y + side, x : x + side] for y, x in boxes[start : start + batch_size]]
            probs.append(torch.sigmoid(self.model(self._pixels(crops), conditionals).float()).cpu().numpy())
        return tiles_module.stitch(np.concatenate(probs), boxes, *image.shape[:2])

    @torch.inference_mode()
    def predict_batch(
        self,
        images: Sequence[ImageLike],
        prompts: Sequence[PromptLike],
        *,
        batch_size: int = 8,
        refine: str = "none",
        tiles: bool = False,
    ) -> list[np.ndarray]:
        """Probabilities ``N x H_i x W_i`` (float32) for each image; prompts are encoded once for all images.

        ``refine="guided"`` sharpens the upsampled masks along the image's edges
        (``clipseg.inference.refine``); ``tiles=True`` adds detail from full-resolution windows of
        the model's input size, gated by the whole-image prediction (``clipseg.inference.tiles``).
        ``refine="sam"`` replaces each mask by SAM's inside the mask's box (``predictor.sam``, see
        ``clipseg.sam_refine``). ``refine="none"`` and ``tiles=False`` give the plain bilinear
        upsampling (transformers parity).
        """
        if refine not in (*REFINE_MODES, "sam"):
            raise ValueError(f"unknown refine mode {refine!r}: use one of {', '.join(REFINE_MODES)}, sam")
        if refine == "sam" and self.sam is None:
            raise ValueError(
                "refine='sam' needs a SAM model: predictor.sam = "
                "clipseg.sam_refine.SamRefiner.from_pretrained('facebook/sam-vit-base')"
            )
        conditionals = self.embed_prompts(prompts)
        arrays = [load_image(img, name=f"image {i}") for i, img in enumerate(images)]
        results: list[np.ndarray] = []
        for start in range(0, len(arrays), batch_size):
            chunk = arrays[start : start + batch_size]
            logits = self.model(self._pixels(chunk), conditionals)  # B x N x S x S
            for img, lg in zip(chunk, logits):
                full = F.interpolate(
                    lg[None].float(), size=img.shape[:2], mode="bilinear", align_corners=False
                )
                probs = torch.sigmoid(full[0]).cpu().numpy().astype(np.float32)
                upsampling = max(img.shape[:2]) / self.image_size
                if tiles and tiles_module.needs_tiles(*img.shape[:2], self.image_size):
                    detail = self._tiled(img, conditionals, batch_size)
                    probs = tiles_module.combine(
                        probs, detail, gate_radius=round(tiles_module.GATE_PER_UPSAMPLING * upsampling)
                    )
                if refine == "sam":
                    results.append(self.sam(img, probs))
                else:
                    results.append(refine_probs(img, probs, refine, model_side=self.image_size))
        return results

    def predict(
        self,
        image: ImageLike,
        prompts: Sequence[PromptLike] | PromptLike,
        *,
        refine: str = "none",
        tiles: bool = False,
    ) -> np.ndarray:
        """``N x H x W`` float32 probabilities for one image at its own resolution (options: ``predict_batch``)."""
        if isinstance(prompts, (str, Prompt)):
            prompts = [prompts]
        return self.predict_batch([image], prompts, refine=refine, tiles=tiles)[0]
