import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import (MultiHeadAttention, causal_mask, combine_masks, padding_mask,
                             scaled_dot_product_attention, to_torch_mha_masks)
from utils.checks import FAIL, PASS, TODO
from utils.checks.attention import check_attention, check_multi_head_attention, mha_reference

DT = torch.float64


def _pair(C=8, nh=2, bias=True):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(C, nh, bias=bias, batch_first=True, dtype=DT)
    ours = MultiHeadAttention(C, nh, bias=bias).to(DT).load_from_torch(ref)
    return ours, ref


def test_padding_mask_from_lengths_and_from_attention_mask_agree():
    m1 = padding_mask(torch.tensor([3, 1]), 4)
    m2 = padding_mask(torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]))
    assert m1.shape == (2, 1, 1, 4) and m1.dtype == torch.bool
    assert torch.equal(m1, m2)
    assert m1[0, 0, 0].tolist() == [True, True, True, False]


def test_padded_keys_get_zero_weight_and_do_not_change_real_outputs():
    torch.manual_seed(1)
    q = torch.randn(1, 5, 4, dtype=DT)
    out, w = scaled_dot_product_attention(q, q, q, padding_mask(torch.tensor([3]), 5))
    assert torch.all(w[..., 3:] == 0)
    short, _ = scaled_dot_product_attention(q[:, :3], q[:, :3], q[:, :3])
    torch.testing.assert_close(out[0, 0, :3], short[0])  # padding is invisible to real tokens


def test_combine_masks_is_logical_and_and_skips_none():
    c = combine_masks(causal_mask(3), None, padding_mask(torch.tensor([2]), 3))
    assert c.shape == (1, 1, 3, 3)
    assert c[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert combine_masks(None) is None


@pytest.mark.parametrize("bias", [True, False])
def test_mha_matches_torch_outputs_weights_and_gradients(bias):
    ours, ref = _pair(bias=bias)
    x = torch.randn(3, 5, 8, dtype=DT, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, w = ours(x)
    out_ref, w_ref = ref(x2, x2, x2, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(w, w_ref)
    assert w.shape == (3, 2, 5, 5)
    out.pow(2).sum().backward()
    out_ref.pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(ours.in_proj_weight.grad, ref.in_proj_weight.grad)
    torch.testing.assert_close(ours.out_proj.weight.grad, ref.out_proj.weight.grad)


def test_mha_with_causal_and_padding_masks_matches_torch():
    ours, ref = _pair()
    x = torch.randn(2, 4, 8, dtype=DT)
    lengths = torch.tensor([4, 2])
    out, w = ours(x, mask=combine_masks(causal_mask(4), padding_mask(lengths, 4)))
    out_ref, w_ref = ref(x, x, x, attn_mask=to_torch_mha_masks(causal_mask(4)),
                         key_padding_mask=~padding_mask(lengths, 4)[:, 0, 0],
                         average_attn_weights=False)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(w, w_ref)


def test_cross_attention_and_fused_path_match():
    ours, ref = _pair()
    q, kv = torch.randn(2, 3, 8, dtype=DT), torch.randn(2, 6, 8, dtype=DT)
    out, w = ours(q, kv, kv)
    torch.testing.assert_close(out, ref(q, kv, kv)[0])
    assert w.shape == (2, 2, 3, 6)
    ours.fused = True
    out_f, w_f = ours(q, kv, kv, mask=causal_mask(3, 6))
    ours.fused = False
    out_e, _ = ours(q, kv, kv, mask=causal_mask(3, 6))
    torch.testing.assert_close(out_f, out_e)
    assert w_f is None


def test_mha_matches_functional_sdpa_per_head():
    ours, _ = _pair()
    x = torch.randn(2, 5, 8, dtype=DT)
    w_q, w_k, w_v = ours.in_proj_weight.chunk(3)
    b_q, b_k, b_v = ours.in_proj_bias.chunk(3)
    split = lambda t: t.view(2, 5, 2, 4).transpose(1, 2)  # noqa: E731
    ctx = F.scaled_dot_product_attention(split(F.linear(x, w_q, b_q)), split(F.linear(x, w_k, b_k)),
                                         split(F.linear(x, w_v, b_v)), is_causal=True)
    expected = ours.out_proj(ctx.transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(ours(x, mask=causal_mask(5))[0], expected)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="d_model must be divisible by num_heads"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match=r"query must be a floating-point tensor of shape \(B, T, C\) = \(2, 4, 8\)"):
        mha(torch.randn(2, 4, 6))
    with pytest.raises(TypeError, match=r"mask must be None or a torch.bool tensor \(True = may attend\)"):
        mha(x, mask=torch.ones(4, 4))
    with pytest.raises(ValueError, match=r"mask must be broadcastable to \(B, nh, T, S\)"):
        mha(x, mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"value must be .*\[S=5 from key\]"):
        mha(x, torch.randn(2, 5, 8), torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match="embed_dim"):
        mha.load_from_torch(nn.MultiheadAttention(8, 4))
    with pytest.raises(TypeError, match="lengths_or_attention_mask must be an integer tensor"):
        padding_mask(torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match="lengths must lie"):
        padding_mask(torch.tensor([5]), 4)
    with pytest.raises(ValueError, match="attention_mask must hold only 0/1"):
        padding_mask(torch.tensor([[2, 1]]))
    with pytest.raises(TypeError, match=r"masks\[1\]"):
        combine_masks(causal_mask(2), torch.ones(2, 2))


# --- lab checkers (utils.checks.attention) ---------------------------------------------------


def _learner_attention(scale=True, invert=False, use_mask=True, dim=-1):
    def attention(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1)
        if scale:
            scores = scores / math.sqrt(q.shape[-1])
        if mask is not None and use_mask:
            scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
        w = scores.softmax(dim=dim).nan_to_num(0.0)
        return w @ v, w
    return attention


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("kwargs,expected", [
    ({}, None),
    ({"scale": False}, "not scaled"),
    ({"invert": True}, "mask is inverted"),
    ({"use_mask": False}, "mask is ignored"),
    ({"dim": -2}, "wrong axis"),
])
def test_check_attention_explains_the_usual_mistakes(kwargs, expected):
    result = check_attention(_learner_attention(**kwargs), quiet=True)
    if expected is None:
        assert result.status == PASS
    else:
        assert result.status == FAIL and expected in result.message


def test_check_attention_stub_shape_and_exception():
    assert check_attention(_stub, quiet=True).status == TODO
    r = check_attention(lambda q, k, v, mask=None: (q, q @ k.transpose(-2, -1)), quiet=True)
    assert r.status == FAIL and "shape" in r.message
    r = check_attention(lambda q, k, v, mask=None: 1 / 0, quiet=True)
    assert r.status == FAIL and "ZeroDivisionError" in r.message


def _learner_mha(scale_by_model=False, mean_heads=False):
    def mha(x, W, b, Wo, bo, num_heads, mask=None):
        B, T, C = x.shape
        hs = C // num_heads
        q, k, v = (F.linear(x, w, bb).view(B, T, num_heads, hs).transpose(1, 2) for w, bb in zip(W.chunk(3), b.chunk(3)))
        out, w = scaled_dot_product_attention(q, k, v, mask, scale=1 / math.sqrt(C if scale_by_model else hs))
        out = F.linear(out.transpose(1, 2).reshape(B, T, C), Wo, bo)
        return out, (w.mean(1) if mean_heads else w)
    return mha


def test_check_multi_head_attention_verdicts():
    assert check_multi_head_attention(_learner_mha(), quiet=True).status == PASS
    r = check_multi_head_attention(_learner_mha(scale_by_model=True), quiet=True)
    assert r.status == FAIL and "sqrt(head_dim)" in r.message
    r = check_multi_head_attention(_learner_mha(mean_heads=True), quiet=True)
    assert r.status == FAIL and "averaged over heads" in r.message
    assert check_multi_head_attention(_stub, quiet=True).status == TODO


def test_mha_reference_agrees_with_our_module():
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2).to(DT)
    x = torch.randn(2, 4, 8, dtype=DT)
    args = (x, ours.in_proj_weight.detach(), ours.in_proj_bias.detach(), ours.out_proj.weight.detach(),
            ours.out_proj.bias.detach(), 2, causal_mask(4))
    out, w = mha_reference(*args)
    out2, w2 = ours(x, mask=causal_mask(4))
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(w, w2)


def test_fully_masked_row_attends_to_nothing_without_nan():
    torch.manual_seed(0)
    q = torch.randn(1, 3, 4, dtype=DT, requires_grad=True)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out, w = scaled_dot_product_attention(q, q, q, mask)
    assert torch.all(w[0, 1] == 0) and torch.all(out[0, 1] == 0)
    torch.testing.assert_close(w[0, [0, 2]].sum(-1), torch.ones(2, dtype=DT))
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
