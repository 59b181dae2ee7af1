"""Checkers for the lab "A tiny GPT" (``labs/06_tiny_gpt.ipynb``).

``check_filter_logits`` compares the learner's temperature / top-k / top-p filter with
:func:`utils.sampling.filter_distribution` (itself tested against ``transformers``' logits
warpers) on fixed distributions, and names the usual mistakes: multiplying by the temperature,
top-p that drops the token which crosses the threshold, top-p computed before the temperature or
top-k, probabilities not renormalised. ``check_generate_text`` runs the learner's decoding loop
with a tiny deterministic "model" and checks the length, the context cropping and the tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils.checks import FAIL, PASS, TODO, CheckResult, _report, call_learner, explain_mismatch
from utils.sampling import filter_distribution

__all__ = ["check_filter_logits", "check_generate_text", "filter_reference"]


def filter_reference(logits, temperature=1.0, top_k=None, top_p=None):
    """The reference answer: probabilities ``(..., V)`` after temperature, top-k and top-p."""
    return filter_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p).after


def _times_temperature(logits, temperature=1.0, top_k=None, top_p=None):
    return filter_reference(logits * temperature ** 2, temperature, top_k, top_p)


def _top_p_strict(logits, temperature=1.0, top_k=None, top_p=None):
    probs = filter_reference(logits, temperature, top_k, None)
    if top_p is None:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_p.cumsum(-1) <= top_p  # drops the token that crosses p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    out = probs * keep
    return out / out.sum(-1, keepdim=True)


def _not_renormalised(logits, temperature=1.0, top_k=None, top_p=None):
    after = filter_reference(logits, temperature, top_k, top_p)
    return torch.where(after > 0, (logits / temperature).softmax(-1), torch.zeros_like(after))


def _top_p_before_temperature(logits, temperature=1.0, top_k=None, top_p=None):
    keep = filter_reference(logits, 1.0, top_k, top_p) > 0
    return (logits / temperature).masked_fill(~keep, float("-inf")).softmax(-1)


_MISTAKES = [
    (_times_temperature, "the logits are multiplied by the temperature: divide them, z / temperature"),
    (_not_renormalised, "the kept probabilities do not sum to 1: set the removed logits to -inf and take the "
                        "softmax again (or divide by their sum)"),
    (_top_p_before_temperature, "top-p (or top-k) was applied before the temperature: divide by the temperature "
                                "first, then filter"),
    (_top_p_strict, "top-p drops the token that crosses the threshold: keep the smallest set whose probability "
                    "reaches top_p, i.e. keep a token when the mass of the tokens ranked above it is < top_p"),
]


def _cases():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 12, generator=g) * 2
    return [("temperature 0.5 only", (logits, 0.5, None, None)),
            ("temperature 2.0 only", (logits, 2.0, None, None)),
            ("top-k 4", (logits, 1.0, 4, None)),
            ("top-p 0.8", (logits, 1.0, None, 0.8)),
            ("temperature 1.5 with top-p 0.6", (logits, 1.5, None, 0.6)),
            ("top-k 5 then top-p 0.7, temperature 0.8", (logits, 0.8, 5, 0.7))]


def check_filter_logits(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(logits (..., V), temperature=1.0, top_k=None, top_p=None) -> probabilities (..., V)``."""
    name = "filter_logits"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    cases = _cases()
    for desc, args in cases:
        expected = filter_reference(*args)
        got, failed = call_learner(name, fn, [args[0].clone()], dict(temperature=args[1], top_k=args[2], top_p=args[3]),
                                   case=desc)
        if failed is not None:
            return _report(failed, quiet)
        msg = explain_mismatch(expected, got, what="probabilities")
        if msg is None:
            continue
        if "shape" not in msg:
            for wrong, why in _MISTAKES:
                if explain_mismatch(wrong(*args), got) is None:
                    return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference "
                                           "(tested against transformers' top-k and top-p warpers)"), quiet)


class _CountingModel:
    """Predicts (last token + 1) mod V with certainty; records the longest context it was given."""

    def __init__(self, vocab_size: int = 9, block_size: int = 4) -> None:
        self.V, self.block_size, self.longest = vocab_size, block_size, 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.longest = max(self.longest, idx.shape[1])
        if idx.shape[1] > self.block_size:
            raise ValueError(f"context of {idx.shape[1]} tokens exceeds block_size={self.block_size}")
        return torch.nn.functional.one_hot((idx + 1) % self.V, self.V).float() * 20.0  # (B, T, V)


def check_generate_text(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, idx (B, T), max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None,
    generator=None) -> (B, T + max_new_tokens)`` with a deterministic counting model."""
    name = "generate_text"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    model = _CountingModel()
    idx = torch.tensor([[0, 1], [5, 6]])
    try:
        out = fn(model, idx, 6, 4, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    except NotImplementedError:
        return _report(CheckResult(name, TODO, "`generate_text` still raises NotImplementedError: "
                                               "replace the `raise` line with your code."), quiet)
    except ValueError as exc:
        if "exceeds block_size" in str(exc):
            return _report(CheckResult(name, FAIL, "the context is not cropped: feed only the last block_size "
                                                   "tokens, idx[:, -block_size:], to the model"), quiet)
        return _report(CheckResult(name, FAIL, f"your code raised ValueError: {exc}"), quiet)
    except Exception as exc:
        return _report(CheckResult(name, FAIL, f"your code raised {type(exc).__name__}: {exc}"), quiet)
    expected = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 8, 0, 1, 2, 3]])
    msg = explain_mismatch(expected, out, what="generated ids")
    if msg is not None:
        if isinstance(out, torch.Tensor) and out.shape == (2, 6):
            msg = "return the prompt followed by the new tokens, shape (B, T + max_new_tokens), not only the new ones"
        elif isinstance(out, torch.Tensor) and out.shape == expected.shape and torch.equal(out[:, 2], idx[:, 1]):
            msg = "the next token must come from the logits at the LAST position, logits[:, -1, :]"
        return _report(CheckResult(name, FAIL, f"with a model that always predicts 'last token + 1': {msg}"), quiet)
    return _report(CheckResult(name, PASS, "right length, right tokens, context cropped to block_size"), quiet)
