"""The CLIP backbone of CLIPSeg: a ``transformers.CLIPModel`` whose vision tower stops early.

The decoder only reads the activations of a few vision blocks, so the forward pass stops after the
deepest of them (the original code skips the last blocks; the transformers port computes them all).
Prompts are embedded with the full towers, as in CLIP: text via ``get_text_features``'s path, support
images via the pooled, post-layernormed, projected CLS token (CLIPSeg's ``conditional_pixel_values``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import CLIPConfig, CLIPModel

from clipseg.core.errors import BackboneUnavailableError
from clipseg.core.files import looks_like_path
from clipseg.core.hub_access import hub_command, hub_offline, hub_reachable
from clipseg.modeling.fast_block import FastClipBlocks


def compact_clip_config(config: CLIPConfig) -> dict[str, Any]:
    """``config`` as a short JSON-safe dict: only the values that differ from CLIP's defaults."""
    out = config.to_diff_dict()
    out.pop("transformers_version", None)
    return out


@functools.cache
def _takes_causal_mask(layer_type: type) -> bool:
    return "causal_attention_mask" in inspect.signature(layer_type.forward).parameters


def run_encoder_layer(block: nn.Module, hidden: Tensor) -> Tensor:
    """One transformers ``CLIPEncoderLayer`` without masks: ``B x T x C`` in, ``B x T x C`` out.

    transformers 4's layer takes ``(hidden, attention_mask, causal_attention_mask)`` and returns a
    tuple; 5's takes ``(hidden, attention_mask)`` and returns the tensor.
    """
    out = block(hidden, None, None) if _takes_causal_mask(type(block)) else block(hidden, None)
    return out[0] if isinstance(out, tuple) else out


def load_clip_model(source: str | dict[str, Any]) -> CLIPModel:
    """A ``CLIPModel`` from a hub name or local folder, or randomly initialised from a ``CLIPConfig`` dict.

    Raises:
        BackboneUnavailableError: the name is not cached and cannot be downloaded, or the folder is missing;
            the message says what to download or which folder to pass.
    """
    if isinstance(source, dict):
        return CLIPModel(CLIPConfig.from_dict(source))
    folder = Path(source).expanduser()
    if folder.is_dir():
        try:
            return CLIPModel.from_pretrained(str(folder))
        except OSError as err:
            raise BackboneUnavailableError(
                f"folder {source!r} holds no loadable CLIPModel (expected config.json and model.safetensors, "
                f"as written by `CLIPModel.save_pretrained`): {err}"
            ) from err
    if looks_like_path(source):
        raise BackboneUnavailableError(
            f"CLIP backbone folder {source!r} does not exist; pass a folder written by "
            "`CLIPModel.save_pretrained` (config.json + model.safetensors) or a hub name such as "
            "'openai/clip-vit-base-patch16'."
        )
    online = hub_reachable()
    try:
        return CLIPModel.from_pretrained(source, local_files_only=not online)
    except OSError as err:
        if hub_offline():
            how = "HF_HUB_OFFLINE is set, so nothing is downloaded"
        elif not online:
            how = "the hub cannot be reached (no network?)"
        else:
            how = "the download failed"
        raise BackboneUnavailableError(
            f"cannot load the CLIP backbone {source!r}: it is not in the local Hugging Face cache and {how}.\n"
            f"Either download it once on a machine with network access:\n"
            f"    {hub_command(f'download {source}')}\n"
            f"(then copy ~/.cache/huggingface/hub, or set HF_HOME), or pass a local folder holding its "
            f"config.json and model.safetensors as the backbone, e.g. backbone='/path/to/clip-vit-base-patch16'."
        ) from err


def _right_padded(attention_mask: Tensor | None) -> bool:
    """Whether every row of the mask is ones followed by zeros (or there is no mask)."""
    return attention_mask is None or bool((attention_mask.cumprod(dim=1) == attention_mask).all())


class ClipBackbone(nn.Module):
    """CLIP text and vision towers, with a vision forward that returns intermediate block outputs.

    Args:
        source: hub name or local folder of a ``CLIPModel``, or a ``CLIPConfig`` dict (random weights).
        extract_layers: 0-based vision block indices to return (transformers' ``hidden_states[i + 1]``).
        frozen: keep the weights fixed and the towers in eval mode; their forward then runs without
            autograd, which saves the activation memory of the whole tower during training.
    """

    def __init__(
        self, *, source: str | dict[str, Any], extract_layers: Sequence[int], frozen: bool = True
    ) -> None:
        super().__init__()
        self.clip = load_clip_model(source)
        self.extract_layers = tuple(int(i) for i in extract_layers)
        if max(self.extract_layers) >= self.num_layers:
            raise ValueError(
                f"extract_layers={self.extract_layers} reach beyond the {self.num_layers} vision blocks of the backbone"
            )
        self.frozen = frozen
        self._fast = FastClipBlocks()
        if frozen:
            self.clip.requires_grad_(False)
            self.clip.eval()

    @property
    def vision_config(self) -> Any:
        return self.clip.config.vision_config

    @property
    def hidden_size(self) -> int:
        return int(self.vision_config.hidden_size)

    @property
    def patch_size(self) -> int:
        return int(self.vision_config.patch_size)

    @property
    def num_layers(self) -> int:
        return len(self.clip.vision_model.encoder.layers)

    @property
    def projection_dim(self) -> int:
        return int(self.clip.config.projection_dim)

    def train(self, mode: bool = True) -> ClipBackbone:
        # A frozen backbone stays in eval mode even when the whole model is switched to training.
        super().train(mode and not self.frozen)
        return self

    @contextlib.contextmanager
    def _autograd(self) -> Iterator[None]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            yield

    def _vision_blocks(self, pixel_values: Tensor, last: int) -> Iterator[Tensor]:
        """Hidden states after vision blocks ``0 .. last`` (``B x (1 + h * w) x C`` each), computed lazily."""
        vision = self.clip.vision_model
        hidden = vision.embeddings(pixel_values, interpolate_pos_encoding=True)
        yield from self._run_vision_blocks(vision.pre_layrnorm(hidden), first=0, last=last)

    def _run_vision_blocks(self, hidden: Tensor, *, first: int, last: int) -> Iterator[Tensor]:
        """Hidden states after vision blocks ``first .. last`` of ``hidden`` (the input of block ``first``)."""
        for block in self.clip.vision_model.encoder.layers[first : last + 1]:
            if self._fast.supports(block):
                hidden = self._fast(block, hidden)
            else:
                hidden = run_encoder_layer(block, hidden)
            yield hidden

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        """Vision activations of the extracted blocks, in ``extract_layers`` order.

        Args:
            pixel_values: ``B x 3 x H x W`` normalized images, any size of at least one patch; position
                embeddings are interpolated (bicubic) exactly as transformers' CLIPSeg does.

        Returns:
            one ``B x (1 + h * w) x C`` tensor per extracted layer (CLS token first, ``h = H // patch``).
        """
        with self._autograd():
            wanted = set(self.extract_layers)
            hidden = self._vision_blocks(pixel_values, max(wanted))
            outputs = {i: h for i, h in enumerate(hidden) if i in wanted}
        return [outputs[i] for i in self.extract_layers]

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Projected text embeddings ``N x D`` of ``N x L`` token ids (CLIP's ``get_text_features``).

        Right padding beyond the longest prompt is cut first: the text tower is causal, so positions
        after a prompt's end token cannot change its embedding, and shorter sequences are cheaper.
        """
        if attention_mask is not None:
            longest = int(attention_mask.sum(dim=1).max())
            if longest < attention_mask.shape[1] and not attention_mask[:, longest:].any():
                input_ids, attention_mask = input_ids[:, :longest], attention_mask[:, :longest]
        text = self.clip.text_model
        with self._autograd():
            if self._fast.supports(text.encoder.layers[0]) and _right_padded(attention_mask):
                # Causal attention alone gives every token up to a prompt's end the same states as
                # with the padding mask (pads only follow it), so the lean blocks need no mask.
                hidden = text.embeddings(input_ids=input_ids)
                for block in text.encoder.layers:
                    hidden = self._fast(block, hidden, causal=True)
                hidden = text.final_layer_norm(hidden)
                # gather, not hidden[arange(N), ends]: its index arithmetic would be traced as constants
                # of the traced prompt count and length (the ONNX export keeps both dynamic).
                ends = self._end_positions(input_ids)[:, None, None].expand(-1, 1, hidden.shape[-1])
                pooled = hidden.gather(1, ends).squeeze(1)
            else:
                pooled = text(input_ids=input_ids, attention_mask=attention_mask).pooler_output
            return self.clip.text_projection(pooled)

    def _end_positions(self, input_ids: Tensor) -> Tensor:
        """Where CLIP pools each prompt: its first end token (the highest id for old configs with eos 2)."""
        eos = self.clip.text_model.eos_token_id
        if eos == 2:  # as transformers: configs from before the end token id was fixed pool at the max id
            return input_ids.argmax(dim=-1)
        return (input_ids == eos).int().argmax(dim=-1)

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        """Projected image embeddings ``N x D`` of ``N x 3 x H x W`` images (the full vision tower).

        As CLIP's ``get_image_features`` with interpolated position embeddings: the CLS token after the
        last block, post-layernormed and projected.
        """
        with self._autograd():
            *_, hidden = self._vision_blocks(pixel_values, self.num_layers - 1)
            return self._project_image(hidden)

    def encode_image_from(self, hidden: Tensor, *, after: int) -> Tensor:
        """``encode_image`` continued from ``hidden``, the ``B x (1 + h * w) x C`` output of vision block
        ``after`` (e.g. the deepest extracted activation): the remaining blocks, then the projection.

        Lets a runtime that already holds the image's activations embed it as a visual prompt without
        running the first blocks again (the ONNX export's ``visual.onnx``).
        """
        with self._autograd():
            *_, last = (hidden, *self._run_vision_blocks(hidden, first=after + 1, last=self.num_layers - 1))
            return self._project_image(last)

    def _project_image(self, hidden: Tensor) -> Tensor:
        """CLIP's image embedding ``B x D`` of the last block's output: CLS token, post-layernorm, projection."""
        pooled = self.clip.vision_model.post_layernorm(hidden[:, 0])
        return self.clip.visual_projection(pooled)
