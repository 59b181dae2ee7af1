"""Lab 4 (attention from scratch): wrong attention and multi-head attention with their verdicts."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from utils.checks import FAIL, PASS, TODO
from utils.checks import attention as ca


def _stub(*args, **kwargs):
    raise NotImplementedError


def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = scores.softmax(dim=-1).nan_to_num(0.0)
    return w @ v, w


def _large_negative(q, k, v, mask=None):
    scores = torch.einsum("...td,...sd->...ts", q, k) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(-1e9, dtype=scores.dtype))
    w = F.softmax(scores, dim=-1)
    return torch.einsum("...ts,...sd->...td", w, v), w


def _renormalised_after(q, k, v, mask=None):
    """Mask after the softmax, then renormalise: the same numbers, so also right."""
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    if mask is not None:
        w = w * mask
        w = w / w.sum(-1, keepdim=True)
    return w @ v, w


def _inplace_scale(q, k, v, mask=None):
    q /= math.sqrt(q.shape[-1])
    return attention(q * math.sqrt(q.shape[-1]), k, v, mask)


def _detached_k(q, k, v, mask=None):
    return attention(q, k.detach(), v, mask)


def _via_numpy(q, k, v, mask=None):
    out, w = attention(q, k, v, mask)
    return torch.from_numpy(out.detach().numpy()), w


def _k_dot_T(q, k, v, mask=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = q @ k.T / math.sqrt(q.shape[-1])
    w = scores.softmax(-1)
    return w @ v, w


ATTN_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in ca._ATTENTION_MISTAKES] + [
    ("pair swapped", lambda q, k, v, mask=None: attention(q, k, v, mask)[::-1], "wrong order"),
    ("output only", lambda q, k, v, mask=None: attention(q, k, v, mask)[0], "return a pair"),
    ("k.T on 3-D tensors", _k_dot_T, "raised RuntimeError"),
    ("q scaled in place", _inplace_scale, "modified its input `q` in place"),
    ("k detached", _detached_k, "no gradient reaches `k`"),
    ("through NumPy", _via_numpy, "no gradient flows back"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", ATTN_WRONG, ids=[c[0][:40] for c in ATTN_WRONG])
def test_attention_wrong_answers(label, fn, phrase):
    res = ca.check_attention(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [attention, _large_negative, _renormalised_after,
                                lambda q, k, v, mask=None: ca.scaled_dot_product_attention(q, k, v, mask)])
def test_attention_correct_alternatives(fn):
    res = ca.check_attention(fn, quiet=True)
    assert res.status == PASS and "gradients" in res.message, res.message


def multi_head_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    B, T, C = x.shape
    hs = C // num_heads
    q, k, v = (F.linear(x, W, b).view(B, T, num_heads, hs).transpose(1, 2)
               for W, b in zip(in_proj_weight.chunk(3), in_proj_bias.chunk(3)))
    heads, weights = attention(q, k, v, mask)
    return F.linear(heads.transpose(1, 2).reshape(B, T, C), out_proj_weight, out_proj_bias), weights


def _mha_one_projection(x, W, b, Wo, bo, nh, mask=None):
    """One projection then split with .unflatten and .permute: also right."""
    B, T, C = x.shape
    qkv = (x @ W.T + b).unflatten(-1, (3, nh, C // nh)).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
    heads, w = attention(qkv[0], qkv[1], qkv[2], mask)
    return heads.permute(0, 2, 1, 3).flatten(2) @ Wo.T + bo, w


def _mha_view_merge(x, W, b, Wo, bo, nh, mask=None):
    B, T, C = x.shape
    q, k, v = (F.linear(x, w_, b_).view(B, T, nh, C // nh).transpose(1, 2) for w_, b_ in zip(W.chunk(3), b.chunk(3)))
    heads, w = attention(q, k, v, mask)
    return F.linear(heads.transpose(1, 2).view(B, T, C), Wo, bo), w


def _mha_detached_weights(x, W, b, Wo, bo, nh, mask=None):
    return multi_head_attention(x, W.detach(), b, Wo, bo, nh, mask)


MHA_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in ca._MHA_MISTAKES] + [
    ("view after transpose", _mha_view_merge, "use .reshape"),
    ("in_proj_weight detached", _mha_detached_weights, "no gradient reaches `in_proj_weight`"),
    ("num_heads ignored (1 head)", lambda x, W, b, Wo, bo, nh, mask=None: multi_head_attention(x, W, b, Wo, bo, 1, mask),
     "values differ"),
]


@pytest.mark.parametrize("label,fn,phrase", MHA_WRONG, ids=[c[0][:40] for c in MHA_WRONG])
def test_multi_head_attention_wrong_answers(label, fn, phrase):
    res = ca.check_multi_head_attention(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [multi_head_attention, _mha_one_projection, ca._mha_variant])
def test_multi_head_attention_correct_alternatives(fn):
    res = ca.check_multi_head_attention(fn, quiet=True)
    assert res.status == PASS and "gradients" in res.message, res.message
    assert ca.check_multi_head_attention(_stub, quiet=True).status == TODO
