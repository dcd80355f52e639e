"""Leaner inference forwards for transformer blocks (same weights, same results).

``FastClipBlocks`` runs transformers' CLIP encoder layers, ``decoder_block_inference`` the decoder's
post-norm ``nn.TransformerEncoderLayer`` blocks.

The vision tower dominates CLIPSeg's cost; per block this path saves work that transformers' generic
layer does: one stacked q/k/v matmul instead of three, biases and residuals fused into the matmuls
(``addmm``), and quick-GELU ``x * sigmoid(1.702 x)`` computed as one in-place SiLU on ``1.702 x`` whose
scales are folded into the surrounding matmuls. It is used only without autograd (inference or a
frozen backbone); training an unfrozen backbone goes through transformers' own layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# quick_gelu(x) = x * sigmoid(1.702 x) = silu(1.702 x) / 1.702
QUICK_GELU_SCALE = 1.702


def _params_key(*tensors: Tensor) -> tuple:
    # Storage address and in-place version counter change on .to(), load_state_dict and optimizer steps.
    return tuple((t.data_ptr(), t._version, t.dtype) for t in tensors)


class FastClipBlocks:
    """Runs CLIP encoder layers without autograd, caching each layer's stacked q/k/v projection.

    The stacked weights are derived data (rebuilt when the source weights change or move), kept out
    of the module's state dict; for ViT-B/16 they add 7 MB per block.
    """

    def __init__(self) -> None:
        self._qkv: dict[int, tuple[tuple, Tensor, Tensor]] = {}

    @staticmethod
    def supports(block: nn.Module) -> bool:
        """Whether ``block`` is laid out like transformers' ``CLIPEncoderLayer`` and needs no autograd."""
        needed = ("self_attn", "mlp", "layer_norm1", "layer_norm2")
        return not torch.is_grad_enabled() and not block.training and all(hasattr(block, n) for n in needed)

    def _stacked_qkv(self, attn: nn.Module) -> tuple[Tensor, Tensor]:
        parts = (attn.q_proj, attn.k_proj, attn.v_proj)
        key = _params_key(*(t for p in parts for t in (p.weight, p.bias)))
        cached = self._qkv.get(id(attn))
        if cached is None or cached[0] != key:
            weight = torch.cat([p.weight for p in parts]).detach()
            bias = torch.cat([p.bias for p in parts]).detach()
            cached = self._qkv[id(attn)] = (key, weight, bias)
        return cached[1], cached[2]

    def __call__(self, block: nn.Module, hidden: Tensor, *, causal: bool = False) -> Tensor:
        """``block(hidden)[0]`` for a ``B x T x C`` input, computed the lean way.

        ``causal`` gives the text tower's attention (each token sees itself and those before it).
        """
        attn, mlp = block.self_attn, block.mlp
        batch, tokens, width = hidden.shape
        heads = attn.num_heads
        x = block.layer_norm1(hidden).view(batch * tokens, width)
        weight, bias = self._stacked_qkv(attn)
        qkv = torch.addmm(bias, x, weight.t()).view(batch, tokens, 3, heads, width // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B x heads x T x head_dim
        context = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=attn.scale)
        context = context.transpose(1, 2).reshape(batch * tokens, width)
        out = attn.out_proj
        hidden = torch.addmm(out.bias, context, out.weight.t()).view_as(hidden).add_(hidden)
        x = block.layer_norm2(hidden).view(batch * tokens, width)
        fc1, fc2 = mlp.fc1, mlp.fc2
        if mlp.config.hidden_act == "quick_gelu":
            x = torch.addmm(fc1.bias, x, fc1.weight.t(), beta=QUICK_GELU_SCALE, alpha=QUICK_GELU_SCALE)
            x = F.silu(x, inplace=True)
            x = torch.addmm(fc2.bias, x, fc2.weight.t(), alpha=1 / QUICK_GELU_SCALE)
        else:
            x = fc2(mlp.activation_fn(fc1(x)))
        return x.view_as(hidden).add_(hidden)


def decoder_block_inference(block: nn.TransformerEncoderLayer, hidden: Tensor) -> Tensor:
    """``block(hidden)`` for a post-norm ``nn.TransformerEncoderLayer`` in eval mode without autograd.

    torch's own inference fast path computes attention with batched matmuls and a separate softmax,
    which for the decoder's narrow heads (``64 / 4 = 16`` wide) costs several times more than the
    fused ``scaled_dot_product_attention`` kernel used here.
    """
    attn = block.self_attn
    batch, tokens, width = hidden.shape
    heads = attn.num_heads
    flat = hidden.reshape(batch * tokens, width)
    qkv = torch.addmm(attn.in_proj_bias, flat, attn.in_proj_weight.t()).view(
        batch, tokens, 3, heads, width // heads
    )
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    context = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch * tokens, width)
    out = attn.out_proj
    x = torch.addmm(out.bias, context, out.weight.t()).add_(flat)
    x = block.norm1(x)
    inner = torch.addmm(block.linear1.bias, x, block.linear1.weight.t())
    inner = inner.relu_() if block.activation_relu_or_gelu == 1 else block.activation(inner)
    x = block.norm2(torch.addmm(block.linear2.bias, inner, block.linear2.weight.t()).add_(x))
    return x.view(batch, tokens, width)


def can_run_decoder_block_inference(block: nn.Module) -> bool:
    """Whether ``decoder_block_inference`` applies: a post-norm encoder layer, eval mode, no autograd."""
    return (
        isinstance(block, nn.TransformerEncoderLayer)
        and not block.norm_first
        and not block.training
        and not torch.is_grad_enabled()
        and block.self_attn.batch_first
        and block.self_attn.in_proj_weight is not None
    )
