"""The CLIPSeg decoder: FiLM conditioning, one transformer block per extracted layer, transposed-conv head.

Parameter names follow the original code (``film_mul``, ``film_add``, ``reduces.{i}``, ``blocks.{i}`` as
``nn.TransformerEncoderLayer``, ``trans_conv``) so that the paper's ``.pth`` files load without renaming.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from clipseg.core.config import ClipSegConfig
from clipseg.modeling.fast_block import can_run_decoder_block_inference, decoder_block_inference


def activation_fn(name: str) -> str | Callable[[Tensor], Tensor]:
    """The MLP activation of the decoder blocks by name ("relu", "gelu", "quick_gelu", ...)."""
    if name in {"relu", "gelu"}:
        # Passed as strings, nn.TransformerEncoderLayer can use its fused inference fast path.
        return name
    from transformers.activations import ACT2FN

    if name not in ACT2FN:
        raise ValueError(f"unknown decoder activation {name!r}; use one of relu, gelu, quick_gelu, ...")
    return ACT2FN[name]


def build_head(*, reduce_dim: int, patch_size: int, refined: bool) -> nn.Module:
    """Transposed-conv head from the ``reduce_dim`` x ``h x w`` patch grid to one logit map.

    The plain head upsamples by ``patch_size`` in one step. The refined head (transformers'
    ``use_complex_transposed_convolution``) first mixes neighbouring patches with a 3x3 conv, then
    upsamples twice by ``patch_size // 4`` (the ``nn.Sequential`` indices 0, 2, 4 match the original).
    """
    if not refined:
        return nn.ConvTranspose2d(reduce_dim, 1, kernel_size=patch_size, stride=patch_size)
    step = patch_size // 4
    if step < 1:
        raise ValueError(f"the refined head needs a patch size of at least 4, got {patch_size}")
    return nn.Sequential(
        nn.Conv2d(reduce_dim, reduce_dim, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(reduce_dim, reduce_dim // 2, kernel_size=step, stride=step),
        nn.ReLU(),
        nn.ConvTranspose2d(reduce_dim // 2, 1, kernel_size=step, stride=step),
    )


def _is_patch_deconv(module: nn.Module) -> bool:
    """A transposed conv whose kernel equals its stride: every input pixel owns its own output block."""
    return (
        isinstance(module, nn.ConvTranspose2d)
        and module.kernel_size == module.stride
        and module.padding == (0, 0)
        and module.output_padding == (0, 0)
        and module.dilation == (1, 1)
        and module.groups == 1
    )


def _patch_deconv(conv: nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """``conv(x)`` for a kernel == stride transposed conv, as one matmul and a reshape.

    Without overlaps the transposed conv is a per-pixel linear map from C channels to an
    ``out x k x k`` block; the generic deconvolution kernel is several times slower for it on CPU.
    """
    kh, kw = conv.kernel_size
    batch, channels, height, width = x.shape
    out = conv.out_channels
    y = x.permute(0, 2, 3, 1).reshape(-1, channels) @ conv.weight.reshape(channels, out * kh * kw)
    y = (
        y.view(batch, height, width, out, kh, kw)
        .permute(0, 3, 1, 4, 2, 5)
        .reshape(batch, out, height * kh, width * kw)
    )
    return y if conv.bias is None else y + conv.bias.view(1, -1, 1, 1)


def pool_tokens(tokens: Tensor, logits: Tensor, stride: int) -> Tensor:
    """The decoder's per-prompt summary that presence reads (``clipseg.inference.presence``).

    Args:
        tokens: ``M x R x h x w`` last decoder state (one row per image and prompt).
        logits: ``M x 1 x (h * stride) x (w * stride)`` the head's output for them.

    Returns:
        ``M x 3R``: the tokens' mean weighted by the probability of each token's patch (the painted
        region; the + 1 in the denominator pulls it towards 0 where nothing is painted), their mean and
        their maximum. The region's tokens tell a painted "red square" from the red circle it covers.
    """
    weights = F.avg_pool2d(torch.sigmoid(logits), stride).flatten(2)  # M x 1 x hw
    flat = tokens.flatten(2)  # M x R x hw
    region = (flat * weights).sum(-1) / (weights.sum(-1) + 1.0)
    return torch.cat([region, flat.mean(-1), flat.amax(-1)], dim=1)


def run_head(head: nn.Module, x: Tensor) -> Tensor:
    """``head(x)`` with every kernel == stride transposed conv computed by ``_patch_deconv``."""
    for module in head if isinstance(head, nn.Sequential) else (head,):
        x = _patch_deconv(module, x) if _is_patch_deconv(module) else module(x)
    return x


class ClipSegDecoder(nn.Module):
    """Dense decoder over the extracted CLIP activations, conditioned on prompt embeddings.

    Args:
        hidden_size: width ``C`` of the CLIP vision activations.
        prompt_dim: width ``D`` of the prompt embeddings (CLIP's projection dim).
        depth: number of extracted layers (one reduce and one block each).
        reduce_dim: decoder width ``R``.
        heads: attention heads per block.
        intermediate_size: MLP width per block.
        activation: MLP activation name.
        dropout: dropout inside the blocks (0.1 in the original training, 0 in transformers).
        cond_layer: decoder step at which FiLM is applied.
        patch_size: CLIP patch size (the head's total upsampling factor).
        refined_head: use the refined (complex) transposed-conv head.
    """

    def __init__(
        self,
        *,
        hidden_size: int,
        prompt_dim: int,
        depth: int,
        reduce_dim: int = 64,
        heads: int = 4,
        intermediate_size: int = 2048,
        activation: str = "relu",
        dropout: float = 0.1,
        cond_layer: int = 0,
        patch_size: int = 16,
        refined_head: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= cond_layer < depth:
            raise ValueError(f"cond_layer={cond_layer} must index one of the {depth} decoder steps")
        self.cond_layer = cond_layer
        # Pixels of the head's output per token side: the plain head upsamples by the patch, the refined
        # one twice by patch // 4 (the same for the paper's patch 16; smaller for other patches).
        self.head_stride = (patch_size // 4) ** 2 if refined_head else patch_size
        self.film_mul = nn.Linear(prompt_dim, reduce_dim)
        self.film_add = nn.Linear(prompt_dim, reduce_dim)
        self.reduces = nn.ModuleList(nn.Linear(hidden_size, reduce_dim) for _ in range(depth))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=reduce_dim,
                nhead=heads,
                dim_feedforward=intermediate_size,
                dropout=dropout,
                activation=activation_fn(activation),
                batch_first=True,
                norm_first=False,  # post-norm, as in the paper and transformers' CLIPSegDecoderLayer
            )
            for _ in range(depth)
        )
        self.trans_conv = build_head(reduce_dim=reduce_dim, patch_size=patch_size, refined=refined_head)

    @classmethod
    def from_config(
        cls, config: ClipSegConfig, *, hidden_size: int, prompt_dim: int, patch_size: int
    ) -> ClipSegDecoder:
        """The decoder described by ``config`` on a backbone of the given sizes."""
        return cls(
            hidden_size=hidden_size,
            prompt_dim=prompt_dim,
            depth=len(config.extract_layers),
            reduce_dim=config.reduce_dim,
            heads=config.decoder_heads,
            intermediate_size=config.decoder_intermediate_size,
            activation=config.decoder_hidden_act,
            dropout=config.decoder_dropout,
            cond_layer=config.cond_layer,
            patch_size=patch_size,
            refined_head=config.complex_trans_conv,
        )

    @torch.no_grad()
    def reset_film_to_identity(self) -> None:
        """Make FiLM the identity for every prompt (zero weights, scale bias 1, shift bias 0).

        The conditioning then grows from zero during training (as adaLN-Zero does in DiT) instead of
        starting as random per-prompt scaling, which a decoder trained with a random text tower learns
        to ignore. Pretrained CLIP text embeddings are similar enough that the paper did not need this.
        """
        for layer, bias in ((self.film_mul, 1.0), (self.film_add, 0.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)

    def film(self, features: Tensor, conditionals: Tensor) -> Tensor:
        """FiLM ``film_mul(c) * a + film_add(c)`` for every (image, prompt) pair.

        Args:
            features: ``B x T x R`` per-image decoder state.
            conditionals: ``N x D`` (shared by all images) or ``B x N x D`` prompt embeddings.

        Returns:
            ``(B * N) x T x R``, image-major (all prompts of image 0 first).
        """
        scale = self.film_mul(conditionals)
        shift = self.film_add(conditionals)
        if conditionals.ndim == 2:
            # N x R -> 1 x N x R: broadcast over images instead of repeating the prompts B times.
            scale, shift = scale[None], shift[None]
        out = features[:, None] * scale[:, :, None] + shift[:, :, None]
        return out.flatten(0, 1)

    def forward(
        self,
        activations: Sequence[Tensor],
        conditionals: Tensor,
        *,
        grid: tuple[int, int],
        out_size: tuple[int, int],
        pooled: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits for every image and prompt.

        Args:
            activations: the extracted ``B x (1 + h * w) x C`` activations, shallowest first (they are
                decoded deepest first).
            conditionals: ``N x D`` or ``B x N x D`` prompt embeddings.
            grid: the patch grid ``(h, w)``.
            out_size: ``(H, W)`` of the input images.
            pooled: also return ``pool_tokens`` of every image and prompt, ``B x N x 3R``.

        Returns:
            ``B x N x H x W`` logits. Where the head's output (``h * patch``) differs from the input size,
            it is resized bilinearly (transformers would return the smaller map).
        """
        batch = activations[0].shape[0]
        prompts = conditionals.shape[-2]
        state: Tensor | None = None
        conditioned = False
        for step, (hidden, reduce, block) in enumerate(zip(reversed(activations), self.reduces, self.blocks)):
            reduced = reduce(hidden)
            if state is None:
                state = reduced
            elif conditioned:
                # The image activations are shared by all prompts: add them by broadcasting.
                state = (state.unflatten(0, (batch, prompts)) + reduced[:, None]).flatten(0, 1)
            else:
                state = state + reduced
            if step == self.cond_layer:
                state = self.film(state, conditionals)
                conditioned = True
            # Steps before FiLM run once per image; after it, once per (image, prompt) pair.
            state = (
                decoder_block_inference(block, state)
                if can_run_decoder_block_inference(block)
                else block(state)
            )
        assert state is not None
        tokens = state[:, 1:].transpose(1, 2)  # drop CLS: (B*N) x R x (h*w)
        # reshape, not unflatten: traced for ONNX, unflatten fixes the traced grid as constants.
        tokens = tokens.reshape(*tokens.shape[:2], *grid)
        head = run_head(self.trans_conv, tokens)
        maps = head
        if tuple(head.shape[-2:]) != tuple(out_size):
            maps = F.interpolate(head, size=out_size, mode="bilinear", align_corners=False)
        maps = maps.view(batch, prompts, *out_size)
        if not pooled:
            return maps
        return maps, pool_tokens(tokens, head, self.head_stride).view(batch, prompts, -1)
