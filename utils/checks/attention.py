"""Checkers for the lab "Attention from scratch" (``labs/04_attention_from_scratch.ipynb``).

Each check runs the learner's function on fixed cases, compares with the reference in
:mod:`utils.attention` (itself tested against PyTorch) and, when a case fails, tries the
usual mistakes -- a missing 1/sqrt(d_k) scale, the mask convention inverted or ignored, the
softmax over the wrong axis, weights averaged over heads, scaling by sqrt(d_model) instead
of sqrt(head_dim) -- so the verdict names the likely bug, not only the first wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import causal_mask, padding_mask, scaled_dot_product_attention
from utils.checks import FAIL, PASS, CheckResult, _report, call_learner, explain_mismatch

__all__ = ["check_attention", "check_multi_head_attention", "mha_reference"]


def _attention_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    q, k, v = r(2, 5, 8), r(2, 5, 8), r(2, 5, 6)
    qh, kh, vh = r(2, 3, 4, 16), r(2, 3, 6, 16), r(2, 3, 6, 16)
    return [
        ("no mask, q k v (2, 5, 8/8/6)", (q, k, v, None)),
        ("causal mask (5, 5)", (q, k, v, causal_mask(5))),
        ("padding mask (2, 1, 5) from lengths [5, 3]", (q, k, v, padding_mask(torch.tensor([5, 3]), 5)[:, 0])),
        ("heads (2, 3, 4, 16) against 6 keys", (qh, kh, vh, None)),
    ]


def _unscaled(q, k, v, mask):
    return scaled_dot_product_attention(q, k, v, mask, scale=1.0)


def _inverted(q, k, v, mask):
    return scaled_dot_product_attention(q, k, v, None if mask is None else ~mask)


def _ignored(q, k, v, mask):
    return scaled_dot_product_attention(q, k, v)


def _wrong_axis(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    w = scores.softmax(dim=-2).nan_to_num(0.0)
    return w @ v, w


_ATTENTION_MISTAKES = [
    (_unscaled, "the scores are not scaled: divide q @ kᵀ by sqrt(d_k) = sqrt(q.shape[-1]) before the softmax"),
    (_inverted, "the mask is inverted: True means 'may attend', so fill the scores with -inf where the mask is False"),
    (_ignored, "the mask is ignored: fill the scores with -inf where the mask is False, before the softmax"),
    (_wrong_axis, "the softmax runs over the wrong axis: each query's weights over the keys must sum to 1 (dim=-1)"),
]


def _verdict(name: str, fn: Callable, reference: Callable, cases, mistakes, *, quiet: bool) -> CheckResult:
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    for description, args in cases:
        expected = reference(*args)
        got, failed = call_learner(name, fn, [a.clone() if isinstance(a, torch.Tensor) else a for a in args],
                                   case=description)
        if failed is not None:
            return _report(failed, quiet)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return _report(CheckResult(name, FAIL, f"on case '{description}': return a pair (output, weights), "
                                                   f"got {type(got).__name__}"), quiet)
        msg = explain_mismatch(expected, tuple(got), what="(output, weights)")
        if msg is None:
            continue
        shape_msg = "shape" in msg
        for wrong, why in mistakes:
            if not shape_msg and explain_mismatch(wrong(*args), tuple(got)) is None:
                return _report(CheckResult(name, FAIL, f"on case '{description}': {why}"), quiet)
        return _report(CheckResult(name, FAIL, f"on case '{description}': {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference "
                                           "(tested against torch.nn.functional.scaled_dot_product_attention)"), quiet)


def check_attention(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(q, k, v, mask=None) -> (output, weights)`` (mask: bool, True = may attend)."""
    return _verdict("attention", fn, scaled_dot_product_attention, _attention_cases(), _ATTENTION_MISTAKES,
                    quiet=quiet)


def mha_reference(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    """``torch.nn.MultiheadAttention`` with these weights: ``(output (B, T, C), weights (B, nh, T, T))``."""
    C = x.shape[-1]
    mha = nn.MultiheadAttention(C, num_heads, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(in_proj_weight)
        mha.in_proj_bias.copy_(in_proj_bias)
        mha.out_proj.weight.copy_(out_proj_weight)
        mha.out_proj.bias.copy_(out_proj_bias)
        out, w = mha(x, x, x, attn_mask=None if mask is None else ~mask, average_attn_weights=False)
    return out, w


def _mha_variant(x, W, b, Wo, bo, nh, mask, *, scale_by_model: bool = False, mean_heads: bool = False):
    B, T, C = x.shape
    hs = C // nh
    q, k, v = (F.linear(x, w, bb).view(B, T, nh, hs).transpose(1, 2) for w, bb in zip(W.chunk(3), b.chunk(3)))
    scale = 1 / math.sqrt(C) if scale_by_model else None
    out, w = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    out = F.linear(out.transpose(1, 2).reshape(B, T, C), Wo, bo)
    return out, (w.mean(1) if mean_heads else w)


_MHA_MISTAKES = [
    (lambda *a: _mha_variant(*a, scale_by_model=True),
     "the scores are scaled by sqrt(d_model); each head must use sqrt(head_dim) = sqrt(d_model // num_heads)"),
    (lambda *a: tuple(_mha_variant(*a[:6], None)),
     "the mask is ignored: pass it to your attention function in every head"),
]


def _mha_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(1)
    r = lambda *s: 0.3 * torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    C = 8
    weights = (r(3 * C, C), r(3 * C), r(C, C), r(C))
    x = r(2, 5, C) / 0.3
    return [
        ("self-attention, B=2, T=5, C=8, 2 heads", (x, *weights, 2, None)),
        ("4 heads with a causal mask (5, 5)", (x, *weights, 4, causal_mask(5))),
        ("1 head (plain attention plus projections)", (x, *weights, 1, None)),
    ]


def check_multi_head_attention(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None)``
    -> ``(output (B, T, C), weights (B, nh, T, T))`` against ``torch.nn.MultiheadAttention``."""
    cases = _mha_cases()
    result = _verdict("multi_head_attention", fn, mha_reference, cases, _MHA_MISTAKES, quiet=True)
    if result.status == FAIL and "expected shape (2, 2, 5, 5), got shape (2, 5, 5)" in result.message:
        result = CheckResult(result.name, FAIL, "the weights were averaged over heads: return them per head, "
                                                "shape (B, num_heads, T, T)")
    if result.status == PASS:
        result = CheckResult(result.name, PASS, f"all {len(cases)} cases match torch.nn.MultiheadAttention "
                                                "with the same weights")
    return _report(result, quiet)
