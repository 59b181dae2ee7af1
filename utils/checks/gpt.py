"""Checkers for the lab "A tiny GPT" (``labs/06_tiny_gpt.ipynb``).

``check_filter_logits`` compares the learner's temperature / top-k / top-p filter with
:func:`utils.sampling.filter_distribution` (itself tested against ``transformers``' logits
warpers) on fixed distributions, and names the usual mistakes: multiplying by the temperature
or ignoring it, top-k keeping one token too few, top-p that drops the token which crosses the
threshold (``cumsum <= top_p``), top-p computed before the temperature or before top-k,
probabilities not renormalised, logits returned instead of probabilities.

``check_generate_text`` runs the learner's decoding loop with test models that make each usual
mistake visible: a counting model records every context it is fed (cropping to ``block_size - 1``,
feeding only the last token, cropping from the start, not appending) and predicts "last token + 1"
(the logits of the last position); a model with a fixed next-token distribution is sampled
thousands of times with a seeded generator and the counts are compared with the exact filtered
distribution (greedy argmax, temperature, top-k or top-p ignored, raw logits); and two runs with
the same generator must agree whatever the global random state (the generator is used).
``check_train_step`` checks the training step of exercise 3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import (FAIL, PASS, CheckResult, _report, call_learner, describe, explain_mismatch, guarded,
                          try_mistakes)
from utils.checks._decode import DRAWS, generator_verdict, sampling_verdict, structure_verdict
from utils.checks._train import StepSpec, check_train_step_spec
from utils.checks._validate import int_arg, number_arg, tensor_arg
from utils.sampling import filter_distribution

__all__ = ["check_filter_logits", "check_generate_text", "check_train_step", "filter_reference"]


def filter_reference(logits, temperature=1.0, top_k=None, top_p=None):
    """The reference answer: probabilities ``(..., V)`` after temperature, top-k and top-p."""
    tensor_arg("logits", logits, floating=True, shape="(..., V)")
    if logits.ndim == 0:
        raise ValueError("logits must have a vocabulary axis, shape (..., V), got a 0-d tensor")
    number_arg("temperature", temperature, positive=True)
    if top_k is not None:
        int_arg("top_k", top_k, minimum=1)
    if top_p is not None:
        number_arg("top_p", top_p, low=0.0, high=1.0)
        if top_p == 0:
            raise ValueError("top_p must be in (0, 1], got 0")
    return filter_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p).after


def _times_temperature(logits, temperature=1.0, top_k=None, top_p=None):
    return filter_reference(logits * temperature ** 2, temperature, top_k, top_p)


def _keep_mask(probs: torch.Tensor, top_p: float, *, strict: bool, keep_first: bool, descending: bool = True):
    sorted_p, order = probs.sort(dim=-1, descending=descending)
    cum = sorted_p.cumsum(-1)
    keep_sorted = cum <= top_p if strict else (cum - sorted_p) < top_p
    if keep_first:
        keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def _filtered(logits, temperature=1.0, top_k=None, top_p=None, *, strict=False, keep_first=True, descending=True,
              p_first=False, k_minus_one=False):
    """The filter with one of the usual bugs switched on (all flags off: the right answer)."""
    z = logits / temperature
    keep = torch.ones_like(z, dtype=torch.bool)
    if top_k is not None:
        kth = z.topk(top_k, dim=-1).values[..., -1:]
        keep &= (z > kth) if k_minus_one else (z >= kth)
    if top_p is not None:
        base = z if p_first else z.masked_fill(~keep, float("-inf"))
        keep &= _keep_mask(base.softmax(-1), top_p, strict=strict, keep_first=keep_first, descending=descending)
    return z.masked_fill(~keep, float("-inf")).softmax(-1)


def _variant(**flags) -> Callable:
    def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
        return _filtered(logits, temperature, top_k, top_p, **flags)
    return filter_logits


def _ignore_temperature(logits, temperature=1.0, top_k=None, top_p=None):
    return filter_reference(logits, 1.0, top_k, top_p)


def _log_probs(logits, temperature=1.0, top_k=None, top_p=None):
    return filter_reference(logits, temperature, top_k, top_p).log()


def _not_renormalised(logits, temperature=1.0, top_k=None, top_p=None):
    after = filter_reference(logits, temperature, top_k, top_p)
    return torch.where(after > 0, (logits / temperature).softmax(-1), torch.zeros_like(after))


def _top_p_before_temperature(logits, temperature=1.0, top_k=None, top_p=None):
    keep = filter_reference(logits, 1.0, top_k, top_p) > 0
    return (logits / temperature).masked_fill(~keep, float("-inf")).softmax(-1)


_top_p_strict = _variant(strict=True)


def _logits_out(logits, temperature=1.0, top_k=None, top_p=None):
    keep = filter_reference(logits, temperature, top_k, top_p) > 0
    return (logits / temperature).masked_fill(~keep, float("-inf"))


_MISTAKES = [
    (_times_temperature, "the logits are multiplied by the temperature: divide them, z / temperature"),
    (_ignore_temperature,
     "the temperature is ignored: divide the logits by it first, z = logits / temperature"),
    (_not_renormalised, "the kept probabilities do not sum to 1: set the removed logits to -inf and take the "
                        "softmax again (or divide by their sum)"),
    (_variant(p_first=True), "top-p was applied before top-k: keep the top_k largest logits first, "
                                             "then apply top-p to the distribution of what is left"),
    (_top_p_before_temperature, "top-p was computed before the temperature: divide by the temperature first, then "
                                "filter"),
    (_top_p_strict, "top-p drops the token that crosses the threshold: keep the smallest set whose probability "
                    "reaches top_p, i.e. keep a token when the mass of the tokens ranked above it is < top_p"),
    (_variant(strict=True, keep_first=False),
     "`cumsum <= top_p` drops the token that crosses top_p, and every token of a row whose top token alone "
     "exceeds top_p (a row of -inf, so NaN after the softmax): keep a token when the mass ranked ABOVE it, "
     "cumsum - p, is < top_p; the most likely token is always kept"),
    (_variant(descending=False), "top-p must sort the probabilities in decreasing order "
                                                 "(sort(descending=True)): the most likely tokens are kept"),
    (_variant(k_minus_one=True), "top-k keeps one token too few: a logit equal to the k-th largest "
                                                 "is kept, mask only z < kth"),
    (_logits_out, "return probabilities (the softmax of the filtered logits), not the filtered logits"),
    (_log_probs, "return probabilities, not log-probabilities"),
]


def _cases():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 12, generator=g) * 2
    return [("temperature 0.5 only", (logits, 0.5, None, None)),
            ("temperature 2.0 only", (logits, 2.0, None, None)),
            ("top-k 4", (logits, 1.0, 4, None)),
            ("top-p 0.8", (logits, 1.0, None, 0.8)),
            ("temperature 1.5 with top-p 0.6", (logits, 1.5, None, 0.6)),
            ("top-k 5 then top-p 0.7, temperature 0.8", (logits, 0.8, 5, 0.7)),
            ("one peaked row (V,): the top token alone exceeds top-p 0.5",
             (torch.tensor([4.0, 1.0, 0.5, 0.0, -1.0, -2.0]), 1.0, None, 0.5)),
            ("float64 logits (2, 7), top-k 3", (torch.randn(2, 7, generator=g, dtype=torch.float64), 1.2, 3, None))]


@guarded("filter_logits")
def check_filter_logits(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(logits (..., V), temperature=1.0, top_k=None, top_p=None) -> probabilities (..., V)``."""
    name = "filter_logits"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
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
        why = try_mistakes(_MISTAKES, args, got)
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {why or msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference "
                                           "(tested against transformers' top-k and top-p warpers)"), quiet)


# ------------------------------------------------------------------------------ the decoding loop
@guarded("generate_text")
def check_generate_text(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, idx (B, T), max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None,
    generator=None) -> (B, T + max_new_tokens)``: the contexts fed to the model, the tokens, the
    sampled distribution against the exact filtered one, and the use of the generator."""
    name = "generate_text"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    for verdict in (structure_verdict, sampling_verdict, generator_verdict):
        result = verdict(name, fn)
        if result is not None:
            return _report(result, quiet)
    return _report(CheckResult(name, PASS, "right length and tokens, the context cropped to the last block_size "
                                           f"tokens, {DRAWS} draws per setting follow the filtered distribution, "
                                           "and the generator makes it reproducible"), quiet)


# ----------------------------------------------------------------------------- the training step
class _TinyLM(nn.Module):
    """A bigram language model with GPT's interface: ``forward(idx, targets=None)`` returns the logits
    ``(B, T, V)``, or ``(logits, loss)`` with targets. Its gradients exceed norm 1, so clipping matters."""

    def __init__(self, vocab_size: int = 7) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        logits = 10.0 * self.table(idx)  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _lm_batches():
    g = torch.Generator().manual_seed(4)
    return [(torch.randint(0, 7, (4, 5), generator=g), torch.randint(0, 7, (4, 5), generator=g)) for _ in range(3)]


_GPT_STEP = StepSpec(
    name="train_step",
    make_model=lambda: _TinyLM(),
    make_optimizer=lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    batches=_lm_batches(),
    call=lambda fn, model, optimizer, batch: fn(model, optimizer, *batch),
    loss=lambda model, batch: model(*batch)[1],
    clip=1.0,
)


@guarded("train_step")
def check_train_step(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, optimizer, x, y) -> loss (float)``: forward with targets (``(logits, loss)``),
    zero_grad, backward, clip the gradient norm at 1, step; three steps on a tiny bigram model must
    give the reference losses and weights."""
    return _report(check_train_step_spec(fn, _GPT_STEP), quiet)
