import math

import pytest
import torch
from torch import nn

from utils.attention import causal_mask
from utils.data import make_sequence_task
from utils.positional import (LearnedPositionalEmbedding, SinusoidalPositionalEncoding, apply_rope,
                              rope_angles, sinusoidal_encoding)
from utils.transformer import (TinyTransformer, TinyTransformerConfig, TransformerBlock, block_param_count,
                               token_accuracy, train_sequence_model)

DT = torch.float64


def test_sinusoidal_table_follows_the_paper_formula_interleaved():
    pe = sinusoidal_encoding(50, 16, dtype=DT)
    assert pe.shape == (50, 16)
    for pos in (0, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)


def test_positional_modules_add_and_reject_long_sequences():
    x = torch.zeros(2, 5, 8)
    torch.testing.assert_close(SinusoidalPositionalEncoding(8, 10)(x)[0], sinusoidal_encoding(5, 8))
    learned = LearnedPositionalEmbedding(8, 10)
    torch.testing.assert_close(learned(x)[1], learned.embedding.weight[:5])
    for module in (SinusoidalPositionalEncoding(8, 4), LearnedPositionalEmbedding(8, 4)):
        with pytest.raises(ValueError, match=r"T=5 exceeds the positional table \(max_len=4\)"):
            module(x)
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_encoding(4, 7)
    with pytest.raises(ValueError, match="x must be a floating-point tensor of shape"):
        SinusoidalPositionalEncoding(8, 10)(torch.zeros(2, 5, 6))


def test_rope_matches_complex_rotation_keeps_norms_and_depends_on_offset_only():
    cos, sin = rope_angles(20, 8, dtype=DT)
    torch.manual_seed(0)
    x = torch.randn(3, 6, 8, dtype=DT)
    out = apply_rope(x, cos, sin)
    z = torch.view_as_complex(x.reshape(3, 6, 4, 2).contiguous())
    theta = 10000 ** (-torch.arange(0, 8, 2, dtype=DT) / 8)
    rot = torch.polar(torch.ones(6, 4, dtype=DT), torch.arange(6, dtype=DT)[:, None] * theta)
    torch.testing.assert_close(out, torch.view_as_real(z * rot).reshape(3, 6, 8))
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))
    q, k = torch.randn(8, dtype=DT), torch.randn(8, dtype=DT)
    qs = apply_rope(q.expand(20, 8), cos, sin)
    ks = apply_rope(k.expand(20, 8), cos, sin)
    assert qs[5] @ ks[2] == pytest.approx((qs[13] @ ks[10]).item(), abs=1e-12)
    with pytest.raises(ValueError, match=r"T=21 exceeds the rotary table"):
        apply_rope(torch.randn(21, 8), cos, sin)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_matches_torch_encoder_layer_outputs_and_gradients(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=DT)
    ours = TransformerBlock(16, 4, 32, norm_first=norm_first).to(DT)
    ours.load_state_dict(ref.state_dict())
    ref.eval(), ours.eval()  # same path on both sides
    x = torch.randn(2, 5, 16, dtype=DT, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, w = ours(x, mask=causal_mask(5))
    out_ref = ref(x2, src_mask=~causal_mask(5))
    torch.testing.assert_close(out, out_ref)
    assert w.shape == (2, 4, 5, 5) and torch.all(w.triu(1) == 0)
    out.sum().backward()
    out_ref.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(ours.linear1.weight.grad, ref.linear1.weight.grad)
    torch.testing.assert_close(ours.self_attn.in_proj_weight.grad, ref.self_attn.in_proj_weight.grad)


def test_causal_block_equals_explicit_causal_mask():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, 16, causal=False).to(DT)
    x = torch.randn(1, 4, 8, dtype=DT)
    out_masked, _ = block(x, causal_mask(4))
    unmasked, _ = block(x)
    block.causal = True
    out_causal, w = block(x)
    torch.testing.assert_close(out_causal, out_masked)
    assert not torch.allclose(out_causal[:, :-1], unmasked[:, :-1])  # the mask changed something
    assert torch.all(w.triu(1) == 0)


@pytest.mark.parametrize("C,d_ff", [(16, 32), (64, 256), (384, 1536)])
def test_param_count_formula_matches_code(C, d_ff):
    block = TransformerBlock(C, 4, d_ff)
    counted = sum(p.numel() for p in block.parameters())
    assert block_param_count(C, d_ff)["total"] == counted == 4 * C * C + 2 * C * d_ff + d_ff + 9 * C
    ref = nn.TransformerEncoderLayer(C, 4, d_ff)
    assert sum(p.numel() for p in ref.parameters()) == counted


def test_tiny_transformer_shapes_attention_and_bad_input():
    model = TinyTransformer(TinyTransformerConfig(max_len=6, num_layers=2, num_heads=2, d_model=16, d_ff=32))
    idx = torch.randint(0, 10, (3, 6))
    logits, maps = model.forward_with_attention(idx)
    assert logits.shape == (3, 6, 10) and len(maps) == 2 and maps[0].shape == (3, 2, 6, 6)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 2, 6))
    with pytest.raises(ValueError, match="exceeds the positional table"):
        model(torch.randint(0, 10, (1, 7)))
    with pytest.raises(ValueError, match=r"token ids in \[0, 10\)"):
        model(torch.full((1, 3), 10))
    with pytest.raises(ValueError, match="positional must be one of"):
        TinyTransformer(TinyTransformerConfig(positional="rope"))


def test_training_learns_reversal_quickly():
    torch.manual_seed(0)
    X, y = make_sequence_task("reverse", 2000, 6, seed=0)
    Xt, yt = make_sequence_task("reverse", 200, 6, seed=1)
    model = TinyTransformer(TinyTransformerConfig(max_len=6, d_model=32, num_heads=2, num_layers=1, d_ff=64))
    before, _ = token_accuracy(model, Xt, yt)
    result = train_sequence_model(model, X, y, Xt, yt, steps=250, batch_size=32)
    assert before < 0.3
    assert result.token_accuracy > 0.95
    assert result.losses[-1] < result.losses[0] / 5
