"""Inference API: ``Predictor.predict(image, prompts) -> N x H x W`` probabilities at the image's resolution.

An image can also be encoded once and prompted later (as segment-anything's ``set_image``)::

    embedding = predictor.embed_image("scene.png")
    probs = predictor.predict(embedding, ["red circle"])
    more = predictor.predict(embedding, ["blue square", "green triangle"])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from clipseg.core.config import PreprocessConfig
from clipseg.core.images import ImageLike, load_image, load_mask
from clipseg.core.preprocess import preprocess
from clipseg.core.prompts import Prompt, PromptLike, as_prompt, mix_conditionals, text_weights, visual_prompt
from clipseg.core.tokenizer import unknown_words, vocabulary_words
from clipseg.inference import tiles as tiles_module
from clipseg.inference.backend import Backend
from clipseg.inference.inputs import ImageEmbedding, Job, is_one_image, prompt_list
from clipseg.inference.postprocess import PostProcess
from clipseg.inference.postprocess import postprocess as apply_postprocess
from clipseg.inference.presence import Calibration, prompt_presence
from clipseg.inference.refine import REFINE_MODES
from clipseg.inference.refine import refine as refine_probs
from clipseg.inference.segment import Segmentation, segmentation
from clipseg.inference.upsample import logits_to_probs


def _share_key(prompt: PromptLike, own: tuple[int, int]) -> object:
    """What makes two prompts the same conditional: the text of a plain text prompt, else ``own``."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Prompt) and prompt.image is None:
        return prompt.text  # a text-only prompt's weight plays no part (text_weights gives it 1)
    return own


def _postprocessed(probs: np.ndarray, positives: int, options: PostProcess | None) -> np.ndarray:
    """``probs`` (positives first, then negatives) as ``predict`` returns them for ``options``."""
    if options is None:
        return probs
    return apply_postprocess(probs[:positives], probs[positives:], options)


class Predictor:
    """A model behind a ``Backend``, with its preprocessing, ready for images from users.

    Args:
        backend: the model runtime (``clipseg.backends.torch.TorchBackend``, ...).
        name: zoo name or path the model came from (for summaries).
    """

    def __init__(self, backend: Backend, *, name: str = "") -> None:
        self.backend = backend
        self.name = name
        self._warned_words: set[str] = set()
        # refine="sam" runs this (a clipseg.backends.sam.SamRefiner); None until a user sets one.
        self.sam = None
        # Presence calibration from the model file (clipseg.inference.presence); None: uncalibrated.
        self.calibration: Calibration | None = None
        self._warned_uncalibrated = False

    @property
    def preprocessing(self) -> PreprocessConfig:
        return self.backend.preprocessing

    def _pixels(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return preprocess(list(images), self.preprocessing)

    def _warn_unknown_words(self, texts: Sequence[str]) -> None:
        """Warn once per word about prompt words outside a fixed vocabulary."""
        tokenizer = self.backend.tokenizer
        unknown = {w for text in texts for w in unknown_words(tokenizer, text)} - self._warned_words
        if not unknown:
            return
        self._warned_words |= unknown
        warnings.warn(
            f"{self.name or 'this model'} does not know the word(s) {', '.join(map(repr, sorted(unknown)))}: "
            "its tokenizer was built from a fixed vocabulary, so masks for them mean little. It knows: "
            f"{' '.join(vocabulary_words(tokenizer))} (also in `clipseg zoo list` and its zoo card).",
            UserWarning,
            stacklevel=4,
        )

    def embed_prompts(self, prompts: Sequence[PromptLike] | PromptLike) -> np.ndarray:
        """``N x D`` float32 conditionals for ``prompts``: text encoded in one batch, support images in another.

        A single string, ``Prompt`` or path is one prompt (not a sequence of characters).
        """
        items = [as_prompt(p) for p in prompt_list(prompts)]
        if not items:
            raise ValueError("empty prompt list: pass at least one prompt")
        text_idx = [i for i, p in enumerate(items) if p.text is not None]
        image_idx = [i for i, p in enumerate(items) if p.image is not None]
        text = visual = None
        if text_idx:
            texts = [items[i].text for i in text_idx]
            if self.backend.fixed_vocabulary:
                self._warn_unknown_words(texts)
            encoded = self.backend.encode_text(texts)
            text = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
            text[text_idx] = encoded
        if image_idx:
            encoded = self.backend.encode_visual(
                self._pixels([self._support(i, items[i]) for i in image_idx])
            )
            visual = np.zeros((len(items), encoded.shape[1]), dtype=np.float32)
            visual[image_idx] = encoded
        text = np.zeros_like(visual) if text is None else text
        visual = np.zeros_like(text) if visual is None else visual
        weight = text_weights(
            [p.text is not None for p in items],
            [p.image is not None for p in items],
            [p.weight for p in items],
        )
        return mix_conditionals(text, visual, weight)

    def _support(self, index: int, prompt: Prompt) -> np.ndarray:
        """The support image of ``prompt``, as a visual prompt (paper Sec. 4.3) when it has a mask."""
        img = load_image(prompt.image, name=f"prompt {index}")
        if prompt.mask is None:
            return img
        mask = load_mask(prompt.mask, name=f"prompt {index} mask")
        if not mask.any():
            raise ValueError(
                f"prompt {index} mask ({prompt.label}): the mask is all black, so it marks no "
                "object; mark the object in white, or give no mask to prompt with the whole image"
            )
        if mask.shape != img.shape[:2]:
            raise ValueError(f"prompt {index}: mask {mask.shape} and image {img.shape[:2]} differ in size")
        return visual_prompt(img, mask, self.preprocessing.size)

    def embed_image(self, image: ImageLike) -> ImageEmbedding:
        """Encode ``image`` once; ``predict(embedding, prompts)`` then only runs the decoder."""
        array = load_image(image)
        return ImageEmbedding(features=self.backend.encode_image(self._pixels([array])), image=array)

    def check_refine(self, refine: str) -> None:
        """Raise ``ValueError`` for an unknown refine mode, or ``"sam"`` without ``predictor.sam``."""
        if refine not in (*REFINE_MODES, "sam"):
            raise ValueError(f"unknown refine mode {refine!r}: use one of {', '.join(REFINE_MODES)}, sam")
        if refine == "sam" and self.sam is None:
            raise ValueError(
                "refine='sam' needs a SAM model: predictor.sam = "
                "clipseg.backends.sam.SamRefiner.from_pretrained('facebook/sam-vit-base')"
            )

    def _tiled(self, image: np.ndarray, conditionals: np.ndarray, batch_size: int, window: int) -> np.ndarray:
        """``N x H x W`` probabilities blended from full-resolution windows of ``window`` px, each
        read at the model's input size."""
        boxes = tiles_module.tile_boxes(*image.shape[:2], window)

        def window_probs() -> Iterator[np.ndarray]:  # one N x window x window map at a time
            for start in range(0, len(boxes), batch_size):
                crops = [image[y : y + window, x : x + window] for y, x in boxes[start : start + batch_size]]
                logits = self.backend.decode(self.backend.encode_image(self._pixels(crops)), conditionals)
                yield from (logits_to_probs(tile, (window, window)) for tile in logits)

        return tiles_module.stitch(window_probs(), boxes, *image.shape[:2])

    def _finish(
        self,
        image: np.ndarray,
        logits: np.ndarray,
        conditionals: np.ndarray,
        *,
        refine: str,
        tiles: bool,
        batch_size: int,
    ) -> np.ndarray:
        """``N x H x W`` probabilities of ``image`` from its ``N x S x S`` logits: upsampling, tiles, refinement."""
        probs = logits_to_probs(logits, image.shape[:2])
        side = self.preprocessing.size
        for level in tiles_module.levels(*image.shape[:2], side) if tiles else []:
            detail = self._tiled(image, conditionals, batch_size, level.window)
            probs = tiles_module.combine(probs, detail, gate_radius=level.gate_radius, window=level.window)
        if refine == "sam":
            return self.sam(image, probs)
        return refine_probs(image, probs, refine, model_side=side)

    def predict_arrays(
        self, images: Sequence[np.ndarray], conditionals: np.ndarray, **options: Any
    ) -> list[np.ndarray]:
        """Probabilities ``N x H_i x W_i`` (float32) for ``H_i x W_i x 3`` uint8 images and ``N x D``
        conditionals (``options``: ``batch_size``, ``refine``, ``tiles``; see ``predict_arrays_pooled``)."""
        return [
            probs for probs, _ in self.predict_arrays_pooled(images, conditionals, pooled=False, **options)
        ]

    def predict_arrays_pooled(
        self,
        images: Sequence[np.ndarray],
        conditionals: np.ndarray,
        *,
        batch_size: int = 8,
        refine: str = "none",
        tiles: bool = False,
        pooled: bool | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """``predict_arrays``' probabilities and, per image, the decoder's ``N x 3R`` summary of every
        conditional as ``predict_pooled`` gives it (``pooled``: by default when the presence
        calibration has a head).

        ``refine`` and ``tiles``: see ``predict_batch``.
        """
        self.check_refine(refine)
        options = {"refine": refine, "tiles": tiles, "batch_size": batch_size}
        results: list[tuple[np.ndarray, np.ndarray | None]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            features = self.backend.encode_image(self._pixels(chunk))
            logits, summary = self._decode(features, conditionals, pooled=pooled)
            for index, (img, lg) in enumerate(zip(chunk, logits)):
                pooled = None if summary is None else summary[index]
                results.append((self._finish(img, lg, conditionals, **options), pooled))
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
        ``clipseg.backends.sam``). ``refine="none"`` and ``tiles=False`` give the plain bilinear
        upsampling (transformers parity). A single path / PIL image / array is one image, and a
        single string or ``Prompt`` one prompt.
        """
        self.check_refine(refine)
        if is_one_image(images):
            images = [images]
        conditionals = self.embed_prompts(prompts)
        arrays = [load_image(img, name=f"image {i}") for i, img in enumerate(images)]
        return self.predict_arrays(arrays, conditionals, batch_size=batch_size, refine=refine, tiles=tiles)

    def predict(
        self, image: ImageLike | ImageEmbedding, prompts: Sequence[PromptLike] | PromptLike, **options: Any
    ) -> np.ndarray:
        """``N x H x W`` float32 probabilities for one image (or ``embed_image``'s embedding) at its own
        resolution (``options``: ``refine``, ``tiles``, as ``predict_batch``, and ``postprocess``).

        With ``postprocess`` (negative prompts, combine, threshold, morphology, feather; see
        ``clipseg.inference.postprocess``) the processed masks come back instead: ``K x H x W``.
        """
        return self.predict_pooled(image, prompts, pooled=False, **options)[0]

    def predict_pooled(
        self,
        image: ImageLike | ImageEmbedding,
        prompts: Sequence[PromptLike] | PromptLike,
        *,
        refine: str = "none",
        tiles: bool = False,
        postprocess: PostProcess | None = None,
        pooled: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict``'s masks and the decoder's ``N x 3R`` summary of each prompt that presence reads
        (``ClipSegDecoder.forward(pooled=True)``); None where the backend has none, where one mask
        stands for several prompts (``combine``), or when not asked for (``pooled``; by default only
        when the presence calibration has a head that reads it)."""
        prompts = prompt_list(prompts)
        options = postprocess or PostProcess()
        self.check_refine(refine)
        if not isinstance(image, ImageEmbedding):
            array = load_image(image, name="image 0")
            image = ImageEmbedding(features=self.backend.encode_image(self._pixels([array])), image=array)
        conditionals = self.embed_prompts([*prompts, *options.negative])
        logits, summary = self._decode(image.features, conditionals, pooled=pooled)
        probs = self._finish(image.image, logits[0], conditionals, refine=refine, tiles=tiles, batch_size=8)
        probs = _postprocessed(probs, len(prompts), postprocess)
        if summary is None or len(probs) != len(prompts):
            return probs, None
        return probs, summary[0, : len(prompts)]

    def _decode(
        self, features: Any, conditionals: np.ndarray, *, pooled: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``B x N x S x S`` logits and, when ``pooled`` (None: when the calibration's head reads it)
        and the backend gives it, the decoder's ``B x N x 3R`` summary."""
        if pooled is None:
            pooled = self.calibration is not None and self.calibration.head is not None
        if not pooled:
            return self.backend.decode(features, conditionals), None
        return self.backend.decode_pooled(features, conditionals)

    def segment(
        self,
        image: ImageLike | ImageEmbedding,
        prompts: Sequence[PromptLike] | PromptLike,
        *,
        threshold: float = 0.5,
        min_area: int = 0,
        min_presence: float = 0.0,
        **options: Any,
    ) -> Segmentation:
        """``predict`` (same ``options``) plus presence per prompt, instances and an ``H x W`` label map
        (``clipseg.inference.segment``). With a ``postprocess``, ``probs``, instances and labels come
        from its masks and presence from the probabilities with its negatives removed
        (``presence.prompt_presence``, as bulk masking and the API). Warns once when the model has no
        presence calibration."""
        if self.calibration is None and not self._warned_uncalibrated:
            self._warned_uncalibrated = True
            warnings.warn(
                f"{self.name or 'this model'} has no presence calibration (`clipseg calibrate`): "
                "presence is the uncalibrated maximum probability",
                UserWarning,
                stacklevel=2,
            )
        post = options.pop("postprocess", None)
        prompts = prompt_list(prompts)
        probs, pooled = self.predict_pooled(image, [*prompts, *(post.negative if post else ())], **options)
        # Presence reads the probabilities before post-processing, as every path does (prompt_presence).
        scores = prompt_presence(
            probs[: len(prompts)],
            probs[len(prompts) :],
            post or PostProcess(),
            self.calibration,
            None if pooled is None else pooled[: len(prompts)],
        )
        return segmentation(
            _postprocessed(probs, len(prompts), post),
            self.calibration,
            threshold=threshold,
            min_area=min_area,
            min_presence=min_presence,
            scores=scores,
        )

    def predict_each(self, jobs: Sequence[Job]) -> list[np.ndarray]:
        """``predict(job.image, job.prompts, ...)`` for every job, through one forward: all images are
        encoded in one backend call and decoded in one, against the union of the jobs' prompts
        (a text prompt that several jobs share is encoded once).

        Meant for servers that gather requests arriving together (``clipseg.serve``): the caller
        bounds the batch (images x distinct prompts), since every image is decoded for every prompt.
        Returns ``K_i x H_i x W_i`` float32 masks per job, as ``predict`` gives them.
        """
        return [probs for probs, _ in self.predict_each_pooled(jobs, pooled=False)]

    def predict_each_pooled(
        self, jobs: Sequence[Job], *, pooled: bool | None = None
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """``predict_each``'s masks and, per job, the decoder's summary of its prompts as
        ``predict_pooled`` gives it (``pooled``: by default when the presence calibration has a head)."""
        if not jobs:
            return []
        for job in jobs:
            self.check_refine(job.refine)
        arrays = [load_image(job.image, name=f"image {i}") for i, job in enumerate(jobs)]
        prompt_lists = [[*prompt_list(j.prompts), *(j.postprocess or PostProcess()).negative] for j in jobs]
        # Equal text prompts share a row; image prompts keep their own (their key is their position).
        keys = [[_share_key(p, (i, k)) for k, p in enumerate(ps)] for i, ps in enumerate(prompt_lists)]
        unique = {key: p for ks, ps in zip(keys, prompt_lists) for key, p in zip(ks, ps)}
        row = {key: r for r, key in enumerate(unique)}
        conditionals = self.embed_prompts(list(unique.values()))
        logits, summary = self._decode(
            self.backend.encode_image(self._pixels(arrays)), conditionals, pooled=pooled
        )
        results = []
        for index, (job, array, job_keys) in enumerate(zip(jobs, arrays, keys)):
            rows = [row[key] for key in job_keys]
            probs = self._finish(
                array,
                logits[index][rows],
                conditionals[rows],
                refine=job.refine,
                tiles=job.tiles,
                batch_size=8,
            )
            count = len(prompt_list(job.prompts))
            probs = _postprocessed(probs, count, job.postprocess)
            pooled = None if summary is None or len(probs) != count else summary[index][rows[:count]]
            results.append((probs, pooled))
        return results
