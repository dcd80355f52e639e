"""The decoder's pooled summary per prompt (``ClipSegDecoder.forward(pooled=True)``), read by the presence head."""

import pytest
import torch

from clipseg.modeling import decoder as decoder_module
from clipseg.modeling.decoder import ClipSegDecoder


@pytest.mark.parametrize(("patch", "refined"), [(8, False), (16, True), (8, True)])
def test_the_pooled_summary_weights_each_token_by_its_patch_probability(patch, refined, monkeypatch):
    torch.manual_seed(0)
    decoder = ClipSegDecoder(
        hidden_size=12, prompt_dim=10, depth=2, reduce_dim=8, heads=2, intermediate_size=16,
        dropout=0.0, patch_size=patch, refined_head=refined,
    ).eval()  # fmt: skip
    grid = (3, 5)
    activations = [torch.randn(2, 1 + grid[0] * grid[1], 12) for _ in range(2)]
    conditionals = torch.randn(3, 10)
    captured = {}
    run_head = decoder_module.run_head

    def recording(head, tokens):  # the head's input tokens and output logits
        captured.update(tokens=tokens, head=run_head(head, tokens))
        return captured["head"]

    monkeypatch.setattr(decoder_module, "run_head", recording)
    with torch.no_grad():
        logits, pooled = decoder(activations, conditionals, grid=grid, out_size=(40, 60), pooled=True)
        plain = decoder(activations, conditionals, grid=grid, out_size=(40, 60))
    assert logits.shape == (2, 3, 40, 60) and pooled.shape == (2, 3, 3 * 8)
    torch.testing.assert_close(logits, plain)  # the masks do not change
    tokens = captured["tokens"].flatten(2)  # (B * N) x R x hw
    head = torch.sigmoid(captured["head"])  # (B * N) x 1 x (h * s) x (w * s)
    stride = head.shape[-1] // grid[1]
    weights = head.unfold(2, stride, stride).unfold(3, stride, stride).mean((-1, -2)).flatten(2)
    region = (tokens * weights).sum(-1) / (weights.sum(-1) + 1.0)
    want = torch.cat([region, tokens.mean(-1), tokens.amax(-1)], dim=1).view(2, 3, -1)
    torch.testing.assert_close(pooled, want)
