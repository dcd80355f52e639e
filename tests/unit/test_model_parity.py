"""ClipSeg reproduces transformers' CLIPSegForImageSegmentation, while encoding each image only once."""

from __future__ import annotations

import pytest
import torch

from clipseg.modeling.convert import from_transformers

TOL = 1e-4


def projected(features) -> torch.Tensor:
    """CLIP's ``get_text_features`` / ``get_image_features``: the tensor in transformers 4, in 5 an
    output whose ``pooler_output`` holds it."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def images(batch: int, height: int, width: int | None = None, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, height, width or height, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("complex_head", [False, True], ids=["plain", "refined"])
@pytest.mark.parametrize("size", [64, 96], ids=["native", "interpolated"])
@pytest.mark.parametrize("cond_layer", [0, 1])
def test_text_prompt_parity(make_hf_clipseg, hf_logits, text_inputs, complex_head, size, cond_layer):
    hf = make_hf_clipseg(complex_head=complex_head, extract_layers=(1, 2, 4), cond_layer=cond_layer)
    model = from_transformers(hf).eval()
    pixels = images(2, size)
    with torch.no_grad():
        ours = model(pixels, model.encode_text(**text_inputs))
    want = hf_logits(hf, pixels, **text_inputs)
    assert ours.shape == (2, len(text_inputs["input_ids"]), size, size)
    assert (ours - want).abs().max().item() <= TOL


@pytest.mark.parametrize("complex_head", [False, True], ids=["plain", "refined"])
@pytest.mark.parametrize("size", [64, 96], ids=["native", "interpolated"])
def test_visual_prompt_parity(make_hf_clipseg, hf_logits, complex_head, size):
    hf = make_hf_clipseg(complex_head=complex_head)
    model = from_transformers(hf).eval()
    pixels, support = images(2, size), images(3, 80, seed=2)
    with torch.no_grad():
        ours = model(pixels, model.encode_visual_prompt(support))
    assert (ours - hf_logits(hf, pixels, conditional_pixel_values=support)).abs().max().item() <= TOL


def test_prompt_embeddings_match_transformers(make_hf_clipseg, text_inputs):
    hf = make_hf_clipseg()
    model = from_transformers(hf).eval()
    support = images(2, 64)
    with torch.no_grad():
        assert torch.allclose(
            model.encode_text(**text_inputs), projected(hf.clip.get_text_features(**text_inputs)), atol=1e-5
        )
        want = projected(hf.clip.get_image_features(support))
        assert torch.allclose(model.encode_visual_prompt(support), want, atol=1e-5)


def test_left_padded_text_uses_the_mask(make_hf_clipseg, text_inputs):
    """The lean text path (causal attention, no mask) is only taken for right padding."""
    hf = make_hf_clipseg()
    model = from_transformers(hf).eval()
    ids, mask = text_inputs["input_ids"], text_inputs["attention_mask"]
    shift = (mask == 0).sum(dim=1)
    left_ids = torch.stack([row.roll(int(s)) for row, s in zip(ids, shift)])
    left_mask = torch.stack([row.roll(int(s)) for row, s in zip(mask, shift)])
    assert not torch.equal(left_mask, mask)
    with torch.no_grad():
        want = projected(hf.clip.get_text_features(input_ids=left_ids, attention_mask=left_mask))
        assert torch.allclose(model.encode_text(left_ids, left_mask), want, atol=1e-5)


def test_per_image_conditionals(make_hf_clipseg, text_inputs):
    """``B x N x D`` conditionals: image b is decoded with its own N prompts."""
    model = from_transformers(make_hf_clipseg()).eval()
    pixels = images(2, 64)
    with torch.no_grad():
        text = model.encode_text(**text_inputs)
        per_image = torch.stack([text, text.flip(0)])  # 2 x N x D
        got = model(pixels, per_image)
        for b in range(2):
            want = model(pixels[b : b + 1], per_image[b])
            assert (got[b] - want[0]).abs().max().item() <= 1e-5
        # shared N x D equals the same prompts given per image
        assert torch.allclose(model(pixels, text), model(pixels, text.expand(2, -1, -1)), atol=1e-6)


@pytest.mark.parametrize(("height", "width"), [(64, 96), (72, 88)])
def test_any_input_size_gives_full_resolution_logits(make_hf_clipseg, text_inputs, height, width):
    """Non-square and non-multiple-of-patch inputs (transformers cannot do these) give ``B x N x H x W``."""
    model = from_transformers(make_hf_clipseg(complex_head=True)).eval()
    with torch.no_grad():
        out = model(images(1, height, width), model.encode_text(**text_inputs))
    assert out.shape == (1, 3, height, width)
    assert torch.isfinite(out).all()


def test_vision_tower_stops_after_deepest_extracted_layer(make_hf_clipseg, text_inputs):
    model = from_transformers(make_hf_clipseg(extract_layers=(0, 2))).eval()
    layers = model.backbone.clip.vision_model.encoder.layers
    calls: list[int] = []
    # Hooks on a submodule that both the lean inference path and transformers' layer forward call.
    handles = [
        layer.layer_norm1.register_forward_hook(lambda *_, i=i: calls.append(i))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            cond = model.encode_text(**text_inputs)
            model(images(2, 64), cond)
            assert calls == [0, 1, 2], f"ran vision blocks {calls} of {len(layers)}"
            calls.clear()
            model.encode_visual_prompt(images(1, 64))  # prompts use the whole tower (pooled output)
            assert calls == list(range(len(layers)))
    finally:
        for handle in handles:
            handle.remove()


def test_each_image_encoded_once_for_all_prompts(make_hf_clipseg, text_inputs):
    model = from_transformers(make_hf_clipseg()).eval()
    seen: list[int] = []
    handle = model.backbone.clip.vision_model.embeddings.register_forward_hook(
        lambda _m, args, _out: seen.append(args[0].shape[0])
    )
    try:
        with torch.no_grad():
            model(images(2, 64), model.encode_text(**text_inputs))
    finally:
        handle.remove()
    assert seen == [2]


def test_frozen_backbone_stays_frozen_in_training(make_hf_clipseg, text_inputs):
    model = from_transformers(make_hf_clipseg()).train()
    assert not model.backbone.clip.training and model.decoder.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    out = model(images(1, 64), model.encode_text(**text_inputs))
    out.mean().backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


@pytest.mark.parametrize("complex_head", [False, True], ids=["plain", "refined"])
def test_head_matches_its_modules(complex_head):
    """The matmul form of the kernel == stride transposed convs equals the modules, gradients included."""
    from clipseg.modeling.decoder import build_head, run_head

    head = build_head(reduce_dim=8, patch_size=16, refined=complex_head)
    x = torch.randn(3, 8, 4, 5, requires_grad=True)
    ours, want = run_head(head, x), head(x)
    assert ours.shape == want.shape == (3, 1, 64, 80)
    assert torch.allclose(ours, want, atol=1e-5)
    grad = torch.randn_like(want)
    (ours_grad,) = torch.autograd.grad(ours, x, grad)
    (want_grad,) = torch.autograd.grad(want, x, grad)
    assert torch.allclose(ours_grad, want_grad, atol=1e-5)
