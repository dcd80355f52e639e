"""Inference API: ``Predictor.predict(image, prompts) -> N x H x W`` probabilities at the image's resolution."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clipseg.images import ImageLike, load_image, load_mask
from clipseg.inference import bulk
from clipseg.inference import tiles as tiles_module
from clipseg.inference.bulk import BulkSummary, Source
from clipseg.inference.postprocess import PostProcess
from clipseg.inference.postprocess import postprocess as apply_postprocess
from clipseg.inference.refine import REFINE_MODES
from clipseg.inference.refine import refine as refine_probs
from clipseg.modeling import ClipSeg
from clipseg.prompts import mix_conditionals, tokenize_prompts, visual_prompt
from clipseg.tokenizer import unknown_words, vocabulary_words


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


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` this torch can use (default: cuda if available, else cpu).

    Raises:
        ValueError: not a device name, or a CUDA device this machine or torch build does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r}: not a device name; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise ValueError(f"device {str(device)!r}: {why} (torch {torch.__version__}); use cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: only {torch.cuda.device_count()} GPU(s) are visible (cuda:0...)"
            )
    return resolved


def _prompt_list(prompts: Sequence[PromptLike] | PromptLike) -> list[PromptLike]:
    """A single string, ``Prompt``, path or image is one prompt (not a sequence of characters)."""
    if isinstance(prompts, (str, Path, Prompt, Image.Image, np.ndarray)):
        return [prompts]
    return list(prompts)


def _is_one_image(images: object) -> bool:
    """A path, PIL image or single ``H x W[ x C]`` array, as opposed to a sequence of images."""
    return isinstance(images, (str, Path, Image.Image)) or (
        isinstance(images, np.ndarray) and images.ndim <= 3
    )


class Predictor:
    """A ``ClipSeg`` model with its tokenizer and preprocessing, ready for images from users."""

    def __init__(
        self, model: ClipSeg, tokenizer, *, device: str | torch.device | None = None, name: str = ""
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        # A randomly initialised backbone was trained with a tokenizer built from a fixed corpus
        # (e.g. shapes-tiny): words outside it carry no meaning the model learnt.
        self._fixed_vocabulary = model.config.backbone_is_random
        self._warned_words: set[str] = set()
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

    def _warn_unknown_words(self, texts: Sequence[str]) -> None:
        """Warn once per word about prompt words outside a fixed vocabulary."""
        unknown = {w for text in texts for w in unknown_words(self.tokenizer, text)} - self._warned_words
        if not unknown:
            return
        self._warned_words |= unknown
        warnings.warn(
            f"{self.name or 'this model'} does not know the word(s) {', '.join(map(repr, sorted(unknown)))}: "
            "its tokenizer was built from a fixed vocabulary, so masks for them mean little. It knows: "
            f"{' '.join(vocabulary_words(self.tokenizer))} (also in `clipseg zoo list` and its zoo card).",
            UserWarning,
            stacklevel=4,
        )

    @torch.inference_mode()
    def embed_prompts(self, prompts: Sequence[PromptLike] | PromptLike) -> torch.Tensor:
        """``N x D`` conditionals for ``prompts``: text encoded in one batch, support images in another.

        A single string, ``Prompt`` or path is one prompt (not a sequence of characters).
        """
        items = [as_prompt(p) for p in _prompt_list(prompts)]
        if not items:
            raise ValueError("empty prompt list: pass at least one prompt")
        dim = self.model.prompt_dim
        text = torch.zeros(len(items), dim, device=self.device)
        visual = torch.zeros(len(items), dim, device=self.device)
        text_idx = [i for i, p in enumerate(items) if p.text is not None]
        image_idx = [i for i, p in enumerate(items) if p.image is not None]
        if text_idx:
            texts = [items[i].text for i in text_idx]
            if self._fixed_vocabulary:
                self._warn_unknown_words(texts)
            enc = tokenize_prompts(self.tokenizer, texts, max_length=self.model.max_text_tokens)
            text[text_idx] = self.model.encode_text(**{k: v.to(self.device) for k, v in enc.items()})
        if image_idx:
            supports = []
            for i in image_idx:
                img = load_image(items[i].image, name=f"prompt {i}")
                if items[i].mask is not None:
                    mask = load_mask(items[i].mask, name=f"prompt {i} mask")
                    if not mask.any():
                        raise ValueError(
                            f"prompt {i} mask ({items[i].label}): the mask is all black, so it marks no "
                            "object; mark the object in white, or give no mask to prompt with the whole image"
                        )
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

    def check_refine(self, refine: str) -> None:
        """Raise ``ValueError`` for an unknown refine mode, or ``"sam"`` without ``predictor.sam``."""
        if refine not in (*REFINE_MODES, "sam"):
            raise ValueError(f"unknown refine mode {refine!r}: use one of {', '.join(REFINE_MODES)}, sam")
        if refine == "sam" and self.sam is None:
            raise ValueError(
                "refine='sam' needs a SAM model: predictor.sam = "
                "clipseg.sam_refine.SamRefiner.from_pretrained('facebook/sam-vit-base')"
            )

    @torch.inference_mode()
    def predict_arrays(
        self,
        images: Sequence[np.ndarray],
        conditionals: torch.Tensor,
        *,
        batch_size: int = 8,
        refine: str = "none",
        tiles: bool = False,
    ) -> list[np.ndarray]:
        """Probabilities ``N x H_i x W_i`` (float32) for ``H_i x W_i x 3`` uint8 images and ``N x D`` conditionals.

        ``refine`` and ``tiles``: see ``predict_batch``.
        """
        self.check_refine(refine)
        results: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
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

    def predict_batch(
        self,
        images: Sequence[ImageLike] | ImageLike,
        prompts: Sequence[PromptLike] | PromptLike,
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
        upsampling (transformers parity). A single path / PIL image / array is one image, and a
        single string or ``Prompt`` one prompt.
        """
        self.check_refine(refine)
        if _is_one_image(images):
            images = [images]
        conditionals = self.embed_prompts(prompts)
        arrays = [load_image(img, name=f"image {i}") for i, img in enumerate(images)]
        return self.predict_arrays(arrays, conditionals, batch_size=batch_size, refine=refine, tiles=tiles)

    def predict(
        self,
        image: ImageLike,
        prompts: Sequence[PromptLike] | PromptLike,
        *,
        refine: str = "none",
        tiles: bool = False,
        postprocess: PostProcess | None = None,
    ) -> np.ndarray:
        """``N x H x W`` float32 probabilities for one image at its own resolution (options: ``predict_batch``).

        With ``postprocess`` (negative prompts, combine, threshold, morphology, feather; see
        ``clipseg.inference.postprocess``) the processed masks come back instead: ``K x H x W``.
        """
        prompts = _prompt_list(prompts)
        options = postprocess or PostProcess()
        probs = self.predict_batch([image], [*prompts, *options.negative], refine=refine, tiles=tiles)[0]
        if postprocess is None:
            return probs
        return apply_postprocess(probs[: len(prompts)], probs[len(prompts) :], postprocess)

    def iter_predict(
        self, sources: Sequence[str | Path], prompts: Sequence[PromptLike], **options
    ) -> Iterator[tuple[Source, np.ndarray]]:
        """Stream ``(source, masks)`` for files, folders, globs and video frames; see ``inference.bulk.iter_predict``."""
        return bulk.iter_predict(self, sources, prompts, **options)

    def predict_folder(
        self, sources: Sequence[str | Path], prompts: Sequence[PromptLike], *, out: str | Path, **options
    ) -> BulkSummary:
        """Mask files, folders, globs and videos into ``out``; see ``inference.bulk.predict_folder``."""
        return bulk.predict_folder(self, sources, prompts, out=out, **options)
