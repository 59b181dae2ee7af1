"""Checkers for the lab "Attention from scratch" (``labs/04_attention_from_scratch.ipynb``).

Each check runs the learner's function on fixed cases, compares with the reference in
:mod:`utils.attention` (itself tested against PyTorch) and, when a case fails, tries the
usual mistakes -- a missing 1/sqrt(d_k) scale (or 1/d_k, or sqrt(d_v)), the mask convention
inverted or ignored or applied after the softmax, the softmax over the wrong axis, the scores
transposed, the pair returned in the wrong order; for multi-head attention the heads split or
merged without the transpose, the heads interleaved, the projections transposed or missing,
weights averaged over heads, scaling by sqrt(d_model) instead of sqrt(head_dim) -- so the verdict
names the likely bug, not only the first wrong number. The inputs must not be modified in place
(in self-attention q, k and v are one tensor), and the gradients must match the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import causal_mask, padding_mask, scaled_dot_product_attention
from utils.checks import (FAIL, PASS, CheckResult, _report, call_learner, describe, explain_gradients,
                          explain_mismatch, guarded, try_mistakes)
from utils.checks._validate import int_arg, tensor_arg

__all__ = ["check_attention", "check_multi_head_attention", "mha_reference"]

_ATTN_ARGS = ("q", "k", "v", "mask")
_MHA_ARGS = ("x", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias", "num_heads", "mask")


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


def _attn(q, k, v, mask, *, scale=None, fill=float("-inf"), after=False, dim=-1, transposed=False):
    scores = (k @ q.transpose(-2, -1) if transposed else q @ k.transpose(-2, -1)) * scale(q, v)
    if mask is not None and not after:
        scores = scores.masked_fill(~mask, fill)
    w = scores.softmax(dim=dim).nan_to_num(0.0)
    if mask is not None and after:
        w = w * mask
    return w @ v, w


_SQRT_DK = lambda q, v: 1 / math.sqrt(q.shape[-1])  # noqa: E731

_ATTENTION_MISTAKES = [
    (lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, mask, scale=1.0),
     "the scores are not scaled: divide q @ kᵀ by sqrt(d_k) = sqrt(q.shape[-1]) before the softmax"),
    (lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, None if mask is None else ~mask),
     "the mask is inverted: True means 'may attend', so fill the scores with -inf where the mask is False"),
    (lambda q, k, v, mask: scaled_dot_product_attention(q, k, v),
     "the mask is ignored: fill the scores with -inf where the mask is False, before the softmax"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=_SQRT_DK, dim=-2),
     "the softmax runs over the wrong axis: each query's weights over the keys must sum to 1 (dim=-1)"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=lambda q, v: 1 / q.shape[-1]),
     "the scores are divided by d_k: divide by its square root, sqrt(d_k)"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=lambda q, v: 1 / math.sqrt(v.shape[-1])),
     "the scale uses d_v = v.shape[-1]: divide by sqrt(d_k) = sqrt(q.shape[-1]), the size of the dot products"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=_SQRT_DK, fill=0.0),
     "masked scores are set to 0, which still gets weight after the softmax: set them to float('-inf')"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=_SQRT_DK, after=True),
     "the mask is applied after the softmax, so the kept weights no longer sum to 1: fill the scores with -inf "
     "before the softmax"),
    (lambda q, k, v, mask: _attn(q, k, v, mask, scale=_SQRT_DK, transposed=True),
     "the scores are transposed: q @ k.transpose(-2, -1) puts the queries along the rows, k @ qᵀ does not"),
]


def _pair_verdict(name: str, description: str, expected: tuple, got, args: tuple, mistakes) -> CheckResult | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return CheckResult(name, FAIL, f"on case '{description}': return a pair (output, weights), got "
                                       f"{describe(got)}")
    got = tuple(got)
    msg = explain_mismatch(expected, got, what="(output, weights)")
    if msg is None:
        return None
    if explain_mismatch(expected, got[::-1]) is None:
        return CheckResult(name, FAIL, f"on case '{description}': the pair is in the wrong order: return "
                                       "(output, weights)")
    why = try_mistakes(mistakes, args, got)
    return CheckResult(name, FAIL, f"on case '{description}': {why or msg}")


def _verdict(name: str, fn: Callable, reference: Callable, grad_reference: Callable, cases, mistakes,
             arg_names: tuple[str, ...], wrt: tuple[int, ...], pass_message: str, *, quiet: bool) -> CheckResult:
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    for description, args in cases:
        expected = reference(*args)
        got, failed = call_learner(name, fn, [a.clone() if isinstance(a, torch.Tensor) else a for a in args],
                                   case=description, arg_names=arg_names, frozen=arg_names)
        if failed is not None:
            if "modified its input" in failed.message:
                failed = CheckResult(name, FAIL, failed.message + "; in self-attention q, k and v are one tensor, "
                                                                  "so an in-place edit of q changes k and v too")
            return _report(failed, quiet)
        verdict = _pair_verdict(name, description, expected, got, args, mistakes)
        if verdict is not None:
            return _report(verdict, quiet)
    description, args = cases[1]
    report = explain_gradients(fn, grad_reference, args, wrt=wrt, arg_names=arg_names, name=name,
                               select=lambda out: [out[0]])
    if report.message:
        return _report(CheckResult(name, FAIL, f"on case '{description}': {report.message}"), quiet)
    return _report(CheckResult(name, PASS, pass_message), quiet)


@guarded("attention")
def check_attention(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(q, k, v, mask=None) -> (output, weights)`` (mask: bool, True = may attend): values,
    inputs left unchanged, gradients with respect to q, k and v."""
    cases = _attention_cases()
    return _verdict("attention", fn, scaled_dot_product_attention, scaled_dot_product_attention, cases,
                    _ATTENTION_MISTAKES, _ATTN_ARGS, (0, 1, 2),
                    f"all {len(cases)} cases match the reference (tested against "
                    "torch.nn.functional.scaled_dot_product_attention), gradients included", quiet=quiet)


def mha_reference(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None):
    """``torch.nn.MultiheadAttention`` with these weights: ``(output (B, T, C), weights (B, nh, T, T))``."""
    tensor_arg("x", x, ndim=3, floating=True, shape="(B, T, C)")
    C = x.shape[-1]
    nh = int_arg("num_heads", num_heads, minimum=1)
    if C % nh:
        raise ValueError(f"num_heads must divide C = {C}, got {nh}")
    for n, w, shape in (("in_proj_weight", in_proj_weight, (3 * C, C)), ("in_proj_bias", in_proj_bias, (3 * C,)),
                        ("out_proj_weight", out_proj_weight, (C, C)), ("out_proj_bias", out_proj_bias, (C,))):
        tensor_arg(n, w, floating=True)
        if tuple(w.shape) != shape:
            raise ValueError(f"{n} must have shape {shape} for C = {C}, got {tuple(w.shape)}")
    if mask is not None:
        tensor_arg("mask", mask, boolean=True, shape="(T, T)")
    mha = nn.MultiheadAttention(C, nh, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(in_proj_weight)
        mha.in_proj_bias.copy_(in_proj_bias)
        mha.out_proj.weight.copy_(out_proj_weight)
        mha.out_proj.bias.copy_(out_proj_bias)
        out, w = mha(x, x, x, attn_mask=None if mask is None else ~mask, average_attn_weights=False)
    return out, w


def _mha_variant(x, W, b, Wo, bo, nh, mask=None, *, scale_by_model=False, mean_heads=False, split="ok",
                 merge="ok", out_proj="ok", in_proj_t=False, order="qkv", biases=True, use_mask=True,
                 invert_mask=False):
    """The right multi-head attention (all flags at their defaults) or one of the usual bugs."""
    B, T, C = x.shape
    hs = C // nh
    parts = dict(zip(order, zip(W.chunk(3), b.chunk(3))))
    heads = []
    for key in "qkv":
        w_, b_ = parts[key]
        y = (x @ w_ if in_proj_t else F.linear(x, w_)) + (b_ if biases else 0.0)
        if split == "view_direct":
            y = y.reshape(B, nh, T, hs)
        elif split == "interleaved":
            y = y.view(B, T, hs, nh).permute(0, 3, 1, 2)
        else:
            y = y.view(B, T, nh, hs).transpose(1, 2)
        heads.append(y)
    scale = 1 / math.sqrt(C) if scale_by_model else None
    if mask is not None and invert_mask:
        mask = ~mask
    out, w = scaled_dot_product_attention(*heads, mask if use_mask else None, scale=scale)
    out = out.reshape(B, T, C) if merge == "no_transpose" else out.transpose(1, 2).reshape(B, T, C)
    if out_proj == "transposed":
        out = F.linear(out, Wo.T, bo if biases else None)
    elif out_proj == "ok":
        out = F.linear(out, Wo, bo if biases else None)
    return out, (w.mean(1) if mean_heads else w)


_MHA_MISTAKES = [
    (lambda *a: _mha_variant(*a, mean_heads=True),
     "the weights were averaged over heads: return them per head, shape (B, num_heads, T, T)"),
    (lambda *a: _mha_variant(*a, scale_by_model=True),
     "the scores are scaled by sqrt(d_model); each head must use sqrt(head_dim) = sqrt(d_model // num_heads)"),
    (lambda *a: _mha_variant(*a, use_mask=False),
     "the mask is ignored: pass it to your attention function in every head"),
    (lambda *a: _mha_variant(*a, invert_mask=True),
     "the mask is inverted: True means 'may attend' here (nn.MultiheadAttention's attn_mask uses the opposite); "
     "pass the mask to your attention function as it is"),
    (lambda *a: _mha_variant(*a, split="view_direct"),
     "the heads are split with a plain reshape to (B, num_heads, T, hs), which mixes tokens and heads: "
     "view as (B, T, num_heads, hs) first, then .transpose(1, 2)"),
    (lambda *a: _mha_variant(*a, split="interleaved"),
     "the heads are interleaved: head h must take the features h*hs:(h+1)*hs, so view as (B, T, num_heads, hs), "
     "not (B, T, hs, num_heads)"),
    (lambda *a: _mha_variant(*a, merge="no_transpose"),
     "the heads are merged without transposing back: heads.transpose(1, 2).reshape(B, T, C), so that each "
     "token's head outputs sit side by side"),
    (lambda *a: _mha_variant(*a, out_proj="none"),
     "the output projection is missing: finish with F.linear(concat, out_proj_weight, out_proj_bias)"),
    (lambda *a: _mha_variant(*a, out_proj="transposed"),
     "the output projection is transposed: F.linear(x, W, b) computes x @ W.T + b already"),
    (lambda *a: _mha_variant(*a, in_proj_t=True),
     "the input projections are transposed: F.linear(x, W_q, b_q) computes x @ W_q.T + b_q; x @ W_q uses Wᵀ"),
    (lambda *a: _mha_variant(*a, order="kqv"),
     "q and k come from the wrong blocks: in_proj_weight stacks [W_Q; W_K; W_V] in this order"),
    (lambda *a: _mha_variant(*a, order="vkq"),
     "q and v come from the wrong blocks: in_proj_weight stacks [W_Q; W_K; W_V] in this order"),
    (lambda *a: _mha_variant(*a, biases=False),
     "the biases are missing: add in_proj_bias (chunked like the weight) and out_proj_bias"),
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


@guarded("multi_head_attention")
def check_multi_head_attention(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, mask=None)``
    -> ``(output (B, T, C), weights (B, nh, T, T))`` against ``torch.nn.MultiheadAttention``, then the
    gradients with respect to x and the four weights."""
    cases = _mha_cases()
    return _verdict("multi_head_attention", fn, mha_reference, _mha_variant, cases, _MHA_MISTAKES, _MHA_ARGS,
                    (0, 1, 2, 3, 4), f"all {len(cases)} cases match torch.nn.MultiheadAttention with the same "
                    "weights, gradients included", quiet=quiet)
