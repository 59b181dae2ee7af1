"""Checkers for the lab "LoRA and the KV cache from scratch" (``labs/08_lora_and_kv_cache.ipynb``).

Each checker runs the learner's function on fixed cases, compares with the reference in ``utils``
(:mod:`utils.lora`, :mod:`utils.positional`, :mod:`utils.llama`) and, on a mismatch, tries the usual
mistakes one by one to name the one the learner made: no ``alpha / r`` scaling; B not zero, so the
model changes at step 0; merging into the wrong weight (or transposed); the rotary position offset
wrong once the cache holds tokens; the cache appended on the wrong axis; a decoding loop that does not
use its cache. A checker never raises on wrong code (it reports FAIL with the reason).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import torch
from torch import nn

from utils.checks import FAIL, PASS, CheckResult, call_learner, explain_mismatch
from utils.checks import _report as _emit  # prints the verdict; raises in strict mode (instructor copies)
from utils.positional import apply_rope, rope_angles

__all__ = ["check_lora_forward", "check_init_lora", "check_merge_lora", "check_append_kv", "check_rope_new_tokens",
           "check_generate_with_cache", "lora_forward_reference", "merge_lora_reference", "append_kv_reference",
           "rope_new_tokens_reference", "generate_with_cache_reference"]

DT = torch.float64


def _verdict(name: str, status: str, message: str, quiet: bool) -> CheckResult:
    return _emit(CheckResult(name, status, message), quiet)


def _not_callable(name: str, fn, quiet: bool) -> CheckResult | None:
    if callable(fn):
        return None
    return _verdict(name, FAIL, f"expected a function, got {type(fn).__name__}", quiet)


def _same(expected, got) -> bool:
    try:
        return explain_mismatch(expected, got) is None
    except Exception:  # a learner's value that cannot even be compared
        return False


# --------------------------------------------------------------------------- LoRA forward

def lora_forward_reference(x, weight, A, B, alpha):
    """x (N, in), W (out, in), A (r, in), B (out, r) -> x W^T + (alpha / r) x A^T B^T, (N, out)."""
    return x @ weight.T + (x @ A.T @ B.T) * (alpha / A.shape[0])


def _lora_cases():
    g = torch.Generator().manual_seed(0)
    out = []
    for n, d_in, d_out, r, alpha in ((3, 6, 4, 2, 4.0), (5, 8, 8, 4, 16.0), (2, 7, 3, 1, 3.0)):
        x, W = torch.randn(n, d_in, generator=g, dtype=DT), torch.randn(d_out, d_in, generator=g, dtype=DT)
        A, B = torch.randn(r, d_in, generator=g, dtype=DT), torch.randn(d_out, r, generator=g, dtype=DT)
        out.append((f"x {tuple(x.shape)}, W {tuple(W.shape)}, r={r}, alpha={alpha:g}", (x, W, A, B, alpha)))
    return out


_LORA_MISTAKES = [
    (lambda x, W, A, B, a: x @ W.T + x @ A.T @ B.T,
     "no alpha / r scaling: multiply the low-rank term x A^T B^T by alpha / r (r = A.shape[0])"),
    (lambda x, W, A, B, a: x @ W.T + (x @ A.T @ B.T) * a,
     "the low-rank term is scaled by alpha, not alpha / r: divide by the rank r = A.shape[0]"),
    (lambda x, W, A, B, a: x @ W.T + (x @ A.T @ B.T) * (A.shape[0] / a),
     "the scaling is upside down: it is alpha / r, not r / alpha"),
    (lambda x, W, A, B, a: (x @ A.T @ B.T) * (a / A.shape[0]),
     "the frozen weight's output x W^T is missing: LoRA adds its term to the pretrained layer's output"),
]


def check_lora_forward(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x (N, in), weight (out, in), A (r, in), B (out, r), alpha) -> (N, out)``."""
    name = "lora_forward"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    cases = _lora_cases()
    for desc, args in cases:
        got, failed = call_learner(name, fn, [a.clone() if isinstance(a, torch.Tensor) else a for a in args],
                                   case=desc)
        if failed is not None:
            if "size" in failed.message or "shape" in failed.message:
                return _verdict(name, FAIL, failed.message + " (shapes: x (N, in) @ A.T (in, r) -> (N, r); "
                                "@ B.T (r, out) -> (N, out))", quiet)
            return _emit(failed, quiet)
        msg = explain_mismatch(lora_forward_reference(*args), got)
        if msg is None:
            continue
        for wrong, why in _LORA_MISTAKES:
            if _same(wrong(*args), got):
                return _verdict(name, FAIL, f"on case '{desc}': {why}", quiet)
        return _verdict(name, FAIL, f"on case '{desc}': {msg}", quiet)
    return _verdict(name, PASS, f"all {len(cases)} cases match x W^T + (alpha / r) x A^T B^T", quiet)


# --------------------------------------------------------------------------- LoRA initialisation

def check_init_lora(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(in_features, out_features, r, generator) -> (A (r, in), B (out, r))``: B zero (the
    model is unchanged at step 0), A random and small (so B gets a gradient)."""
    name = "init_lora"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    d_in, d_out, r = 24, 10, 4
    got, failed = call_learner(name, fn, [d_in, d_out, r, torch.Generator().manual_seed(0)], case="in 24, out 10, r 4")
    if failed is not None:
        return _emit(failed, quiet)
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        return _verdict(name, FAIL, f"return a pair of tensors (A, B), got {type(got).__name__}", quiet)
    A, B = got
    if tuple(A.shape) == (d_out, r) and tuple(B.shape) == (r, d_in):
        return _verdict(name, FAIL, "A and B are swapped: A is (r, in_features) and B is (out_features, r)", quiet)
    for what, t, shape in (("A", A, (r, d_in)), ("B", B, (d_out, r))):
        if tuple(t.shape) != shape:
            return _verdict(name, FAIL, f"{what} must have shape {shape}, got {tuple(t.shape)}", quiet)
    if not (torch.isfinite(A).all() and torch.isfinite(B).all()):
        return _verdict(name, FAIL, "A or B holds NaN or inf", quiet)
    if B.abs().max() > 0:
        W, x = torch.randn(d_out, d_in, dtype=DT), torch.randn(3, d_in, dtype=DT)
        change = (lora_forward_reference(x, W, A.to(DT), B.to(DT), 8.0) - x @ W.T).abs().max().item()
        return _verdict(name, FAIL, f"B is not zero, so the model changes at step 0 (its output moves by up to "
                        f"{change:.3g} before any training): initialise B with zeros", quiet)
    if A.abs().max() == 0:
        return _verdict(name, FAIL, "A is zero too: with A = B = 0 both gradients are zero (dL/dB needs A, dL/dA "
                        "needs B) and training never starts. Initialise A randomly (small values)", quiet)
    if A.abs().max() > 1.0:
        return _verdict(name, FAIL, f"A is too large (max |A| = {A.abs().max().item():.3g}): use a small "
                        "initialisation such as uniform(-1/sqrt(in_features), 1/sqrt(in_features))", quiet)
    if A.unique().numel() < A.numel() // 2:
        return _verdict(name, FAIL, "A has repeated values: draw it at random so the r directions differ", quiet)
    return _verdict(name, PASS, "B is zero (the model starts exactly as pretrained), A is random and small", quiet)


# --------------------------------------------------------------------------- merging

class _Attn(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))


class _Layer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.self_attn = _Attn(d)


class _TinyModel(nn.Module):
    """Two layers with q, k, v projections named as in Llama (square, so wrong targets do not crash)."""

    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Layer(d) for _ in range(2))


def merge_lora_reference(model: nn.Module, adapters: dict, alpha: float) -> nn.Module:
    """In place: W += (alpha / r) B A for every ``name -> (A, B)`` of ``adapters``; returns ``model``."""
    with torch.no_grad():
        for module_name, (A, B) in adapters.items():
            model.get_submodule(module_name).weight += (B @ A) * (alpha / A.shape[0])
    return model


def _merge_case():
    torch.manual_seed(0)
    model = _TinyModel().to(DT)
    g = torch.Generator().manual_seed(1)
    adapters = {f"layers.{i}.self_attn.{p}": (torch.randn(2, 6, generator=g, dtype=DT),
                                              torch.randn(6, 2, generator=g, dtype=DT))
                for i in range(2) for p in ("q_proj", "v_proj")}
    return model, adapters, 4.0


def check_merge_lora(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, adapters {module name: (A, B)}, alpha) -> model`` (merges in place)."""
    name = "merge_lora"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    model, adapters, alpha = _merge_case()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = merge_lora_reference(copy.deepcopy(model), adapters, alpha).state_dict()
    learner_model = copy.deepcopy(model)
    got, failed = call_learner(name, fn, [learner_model, {k: (a.clone(), b.clone()) for k, (a, b) in adapters.items()},
                                          alpha], case="q_proj and v_proj of 2 layers")
    if failed is not None:
        return _emit(failed, quiet)
    merged = got if isinstance(got, nn.Module) else learner_model
    try:
        state = merged.state_dict()
    except Exception as exc:
        return _verdict(name, FAIL, f"the returned model has no readable weights ({type(exc).__name__})", quiet)
    if set(state) != set(expected):
        return _verdict(name, FAIL, "the model's parameters changed names: merge into the existing Linear "
                        "weights, do not replace or wrap the modules", quiet)
    for key in expected:
        target = key.removesuffix(".weight")
        if target not in adapters and not _same(before[key], state[key]):
            missing = [k for k in adapters if _same(before[k + ".weight"], state[k + ".weight"])]
            extra = f"; {missing[0]}.weight did not change" if missing else ""
            return _verdict(name, FAIL, f"merged into the wrong weight: {key} changed but has no adapter{extra}. "
                            "Find each target with model.get_submodule(name)", quiet)
    for key in expected:
        target = key.removesuffix(".weight")
        if target not in adapters or _same(expected[key], state[key]):
            continue
        A, B = adapters[target]
        delta = state[key] - before[key]
        scale = alpha / A.shape[0]
        if _same(before[key], state[key]):
            why = "was not changed: add the update to the weight in place (weight += ..., under torch.no_grad())"
        elif _same((B @ A).T * scale, delta):
            why = "got the update transposed: W is (out, in) and so is B @ A; do not transpose it"
        elif _same(B @ A, delta):
            why = "got B @ A without the alpha / r scaling"
        elif _same(B @ A * alpha, delta):
            why = "got B @ A scaled by alpha instead of alpha / r"
        elif _same(-(B @ A) * scale, delta):
            why = "got the update subtracted: merging adds (alpha / r) B @ A"
        else:
            why = explain_mismatch(expected[key], state[key], what="weight") or "differs"
        return _verdict(name, FAIL, f"{key} {why}", quiet)
    return _verdict(name, PASS, f"the {len(adapters)} targeted weights moved by (alpha / r) B A, the others did not",
                    quiet)


# --------------------------------------------------------------------------- the KV cache

def append_kv_reference(cache, k, v):
    """``cache`` None or ``(K, V)`` each ``(B, nkv, P, hs)``; ``k, v (B, nkv, T, hs)`` -> ``(K', V')`` of
    ``(B, nkv, P + T, hs)``: the new rows go after the cached ones on the time axis (2)."""
    if cache is None:
        return k, v
    return torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)


def _kv_cases():
    g = torch.Generator().manual_seed(0)

    def t(T):
        return torch.randn(2, 3, T, 5, generator=g, dtype=DT)  # (B=2, nkv=3, T, hs=5): every axis a different size

    return [("empty cache, 4 prompt tokens", (None, t(4), t(4))),
            ("4 cached, 1 new token", ((t(4), t(4)), t(1), t(1))),
            ("7 cached, a chunk of 2 new tokens", ((t(7), t(7)), t(2), t(2)))]


def check_append_kv(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(cache None or (K, V), k, v) -> (K, V)`` with tensors ``(B, nkv, T, hs)``."""
    name = "append_kv"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    axes = {0: "the batch axis (0)", 1: "the heads axis (1)", 3: "the head-size axis (3)"}
    cases = _kv_cases()
    for desc, (cache, k, v) in cases:
        cache_in = None if cache is None else (cache[0].clone(), cache[1].clone())
        got, failed = call_learner(name, fn, [cache_in, k.clone(), v.clone()], case=desc)
        if failed is not None:
            if failed.status != FAIL:
                return _emit(failed, quiet)
            if cache is None:
                return _verdict(name, FAIL, failed.message + " (the first call gets cache=None: return (k, v))", quiet)
            axis = re.search(r"must match except in dimension (\d)", failed.message)
            if axis and int(axis.group(1)) in axes:
                return _verdict(name, FAIL, f"on case '{desc}': the cache is appended on {axes[int(axis.group(1))]}, "
                                "so the shapes do not fit; time is axis 2 of (B, nkv, T, hs): "
                                "torch.cat([K, k], dim=2)", quiet)
            return _emit(failed, quiet)
        expected = append_kv_reference(cache, k, v)
        msg = explain_mismatch(expected, got, what="(K, V)")
        if msg is None:
            continue
        if cache is not None and isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[0], torch.Tensor):
            for axis, words in axes.items():
                try:
                    wrong = torch.cat([cache[0], k], dim=axis)
                except RuntimeError:
                    continue
                if _same(wrong, got[0]):
                    return _verdict(name, FAIL, f"on case '{desc}': the cache is appended on {words}; time is "
                                    f"axis 2 of (B, nkv, T, hs), so use torch.cat([K, k], dim=2)", quiet)
            if _same(torch.cat([k, cache[0]], dim=2), got[0]):
                return _verdict(name, FAIL, f"on case '{desc}': the new keys went before the cached ones: "
                                "torch.cat([K, k], dim=2), old first", quiet)
            if _same(torch.cat([cache[0], k], dim=2), got[0]) and not _same(expected[1], got[1]):
                return _verdict(name, FAIL, f"on case '{desc}': the keys are right but the values are not: append "
                                "v to V the same way", quiet)
            if _same(k, got[0]):
                return _verdict(name, FAIL, f"on case '{desc}': the cached keys were dropped: the result must hold "
                                "the old rows and the new ones", quiet)
        return _verdict(name, FAIL, f"on case '{desc}': {msg}", quiet)
    return _verdict(name, PASS, f"all {len(cases)} cases append on the time axis, old rows first", quiet)


# --------------------------------------------------------------------------- RoPE with a cache

def rope_new_tokens_reference(x, cos, sin, n_cached):
    """Rotate ``x (B, nh, T, hs)`` (new queries or keys) to positions ``n_cached .. n_cached + T - 1``,
    pairs ``(i, i + hs/2)`` (Hugging Face's Llama layout)."""
    return apply_rope(x, cos, sin, offset=n_cached, layout="half")


def _rope_half(x, cos, sin, start, sign=1.0):
    T, half = x.shape[-2], x.shape[-1] // 2
    c, s = cos[start:start + T], sin[start:start + T] * sign
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


def check_rope_new_tokens(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x (B, nh, T, hs), cos (max_len, hs/2), sin, n_cached) -> (B, nh, T, hs)``."""
    name = "rope_new_tokens"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    cos, sin = rope_angles(64, 8, base=100.0, dtype=DT)
    g = torch.Generator().manual_seed(0)
    cases = [("no cache yet, 5 prompt tokens", 0, 5), ("6 cached, 1 new token", 6, 1),
             ("9 cached, a chunk of 3 new tokens", 9, 3)]
    for desc, P, T in cases:
        x = torch.randn(2, 3, T, 8, generator=g, dtype=DT)
        got, failed = call_learner(name, fn, [x.clone(), cos, sin, P], case=desc)
        if failed is not None:
            return _emit(failed, quiet)
        msg = explain_mismatch(rope_new_tokens_reference(x, cos, sin, P), got)
        if msg is None:
            continue
        if P > 0 and _same(_rope_half(x, cos, sin, 0), got):
            why = (f"the position offset is wrong once the cache holds tokens: with {P} cached, the new tokens sit at "
                   f"positions {P} .. {P + T - 1}, but they were rotated as positions 0 .. {T - 1}")
        elif any(_same(_rope_half(x, cos, sin, P + d), got) for d in (-1, 1) if P + d >= 0):
            why = f"the position offset is off by one: the first new token is at position n_cached = {P}"
        elif _same(apply_rope(x, cos, sin, offset=P, layout="interleaved"), got):
            why = "the pairs are (2i, 2i+1); Llama checkpoints in transformers pair dimension i with i + hs/2"
        elif _same(_rope_half(x, cos, sin, P, sign=-1.0), got):
            why = "the rotation goes the wrong way: (x1 cos - x2 sin, x1 sin + x2 cos)"
        else:
            why = msg
        return _verdict(name, FAIL, f"on case '{desc}': {why}", quiet)
    return _verdict(name, PASS, f"all {len(cases)} cases rotate the new tokens to positions n_cached, n_cached + 1, ...",
                    quiet)


# --------------------------------------------------------------------------- decoding with the cache

class _Recorder(nn.Module):
    """Wraps a :class:`utils.llama.Llama`; records each call's input length and whether a cache came along."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []
        self.config = model.config

    def forward(self, idx, *args, **kwargs):
        cache = kwargs.get("cache")
        self.calls.append((int(idx.shape[1]), cache is not None, len(cache) if cache is not None else 0))
        return self.model(idx, *args, **kwargs)


def generate_with_cache_reference(model, idx, max_new_tokens):
    """Greedy decoding with a :class:`utils.llama.KVCache`: the prompt once, then one new token per step."""
    from utils.llama import KVCache

    cache = KVCache(model.config.n_layer)
    with torch.no_grad():
        logits = model(idx, cache=cache)  # (B, T, V)
        for _ in range(max_new_tokens):
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
            logits = model(nxt, cache=cache)
    return idx


def check_generate_with_cache(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, idx (B, T), max_new_tokens) -> (B, T + max_new_tokens)`` (greedy, with a KV cache)
    on a small random :class:`utils.llama.Llama`."""
    from utils.llama import Llama, LlamaConfig

    name = "generate_with_cache"
    if (bad := _not_callable(name, fn, quiet)) is not None:
        return bad
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=40, dim=32, n_layer=2, n_head=4, n_kv_head=2, hidden_dim=48,
                              max_seq_len=64, tie_embeddings=False)).to(DT).eval()
    with torch.no_grad():  # large random weights: the next token depends on the whole context and its positions
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.5)
    idx = torch.randint(0, 40, (2, 5), generator=torch.Generator().manual_seed(1))
    expected = model.generate(idx, 6, greedy=True, use_cache=False)
    rec = _Recorder(model)
    got, failed = call_learner(name, fn, [rec, idx.clone(), 6], case="2 prompts of 5 tokens, 6 new tokens")
    if failed is not None:
        return _emit(failed, quiet)
    msg = explain_mismatch(expected, got, what="generated ids")
    used_cache = any(with_cache for _, with_cache, _ in rec.calls)
    if msg is not None:
        if used_cache and any(T > 1 and held > 0 for T, _, held in rec.calls):
            why = ("after the prompt, feed only the newest token: the cache already holds the keys and values of "
                   "the earlier ones, and feeding them again stores them twice at wrong positions")
        elif isinstance(got, torch.Tensor) and got.shape == (2, 6):
            why = "return the prompt followed by the new tokens, shape (B, T + max_new_tokens)"
        else:
            why = msg
        return _verdict(name, FAIL, why, quiet)
    if not used_cache:
        return _verdict(name, FAIL, "the tokens are right but no cache was passed: create a KVCache and call "
                        "model(ids, cache=cache), so each step computes one new position", quiet)
    lengths = [T for T, _, _ in rec.calls]
    if max(lengths[1:], default=1) > 1:
        return _verdict(name, FAIL, f"the tokens are right but later steps fed {max(lengths[1:])} tokens: feed only "
                        "the newest token", quiet)
    return _verdict(name, PASS, f"same tokens as decoding without a cache; the prompt went in once, then "
                    f"{len(lengths) - 1} single tokens", quiet)
