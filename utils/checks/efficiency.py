"""Checkers for the lab "Efficiency" (``labs/07_efficiency.ipynb``).

``check_distillation_loss`` compares the learner's loss with
:func:`utils.efficiency.distillation_loss` and names the usual mistakes (the T² factor missing,
the KL divergence taken the wrong way round, the temperature applied to the teacher only, the
weights alpha and 1 - alpha swapped). ``check_quantize_int8`` compares the learner's per-tensor
symmetric int8 quantizer with :func:`utils.efficiency.quantize_int8_symmetric` (itself tested
equal to PyTorch's) and names a wrong scale, truncation instead of rounding, or a missing clamp.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from utils.checks import FAIL, PASS, CheckResult, _report, call_learner, explain_mismatch
from utils.efficiency import distillation_loss, quantize_int8_symmetric

__all__ = ["check_distillation_loss", "check_quantize_int8"]


def _kd(s, t, y, T, a, *, t2=True, reverse=False, student_t=True, swap=False):
    log_s = F.log_softmax(s / (T if student_t else 1.0), -1)
    log_t = F.log_softmax(t / T, -1)
    kl = (F.kl_div(log_t, log_s, log_target=True, reduction="batchmean") if reverse
          else F.kl_div(log_s, log_t, log_target=True, reduction="batchmean"))
    soft = kl * (T * T if t2 else 1.0)
    hard = F.cross_entropy(s, y)
    return (1 - a) * soft + a * hard if swap else a * soft + (1 - a) * hard


_KD_MISTAKES = [
    (lambda *a: _kd(*a, t2=False), "the soft term is not multiplied by T²: without it its gradients shrink as 1/T²"),
    (lambda *a: _kd(*a, reverse=True), "the KL divergence is the wrong way round: it must be KL(p_teacher || p_student) "
                                       "= sum p_t (log p_t - log p_s)"),
    (lambda *a: _kd(*a, student_t=False), "the student's logits must be divided by the temperature too"),
    (lambda *a: _kd(*a, swap=True), "alpha weighs the soft (teacher) term and 1 - alpha the cross-entropy; they are swapped"),
]


def check_distillation_loss(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(student_logits (N, K), teacher_logits (N, K), targets (N,), temperature, alpha) -> scalar``."""
    name = "distillation_loss"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g, dtype=torch.float64), 2 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=g)
    cases = [("T=1, alpha=0.5", (s, t, y, 1.0, 0.5)), ("T=4, alpha=0.9", (s, t, y, 4.0, 0.9)),
             ("T=2, alpha=0.3", (s, t, y, 2.0, 0.3)), ("alpha=0: plain cross-entropy", (s, t, y, 3.0, 0.0))]
    for desc, args in cases:
        expected = distillation_loss(*args)
        got, failed = call_learner(name, fn, [a.clone() if isinstance(a, torch.Tensor) else a for a in args], case=desc)
        if failed is not None:
            return _report(failed, quiet)
        if isinstance(got, torch.Tensor) and got.ndim != 0:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': return one number (a 0-d tensor), the mean "
                                                   f"over the batch; got shape {tuple(got.shape)}"), quiet)
        msg = explain_mismatch(expected, got, what="loss")
        if msg is None:
            continue
        for wrong, why in _KD_MISTAKES:
            if explain_mismatch(wrong(*args), got) is None:
                return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference"), quiet)


def _quant(w, *, divisor=127.5, rounding=True, clamp=True):
    scale = (w.abs().max() / divisor).clamp(min=torch.finfo(torch.float32).eps)
    q = w / scale
    q = torch.round(q) if rounding else torch.trunc(q)
    if clamp:
        q = q.clamp(-128, 127)
    return q.to(torch.int8), scale.item()


_Q_MISTAKES = [
    (lambda w: _quant(w, divisor=127.0), "the scale must be max|w| / 127.5 (int8 spans 255 steps, from -128 to 127)"),
    (lambda w: _quant(w, divisor=255.0), "the scale must be max|w| / 127.5: symmetric quantization uses both signs"),
    (lambda w: _quant(w, rounding=False), "w / scale is truncated (casting to int8 cuts the fraction off): round it "
                                          "first with torch.round"),
    (lambda w: _quant(w, clamp=False), "the values are not clamped to [-128, 127] before the cast to int8"),
]


def check_quantize_int8(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(w) -> (q int8 tensor of w's shape, scale float)``."""
    name = "quantize_int8"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    g = torch.Generator().manual_seed(1)
    cases = [("a (4, 6) weight matrix", torch.randn(4, 6, generator=g)),
             ("a vector with one large value", torch.cat([torch.randn(9, generator=g) * 0.1, torch.tensor([3.0])])),
             ("all weights negative", -torch.rand(3, 3, generator=g) - 0.5)]
    for desc, w in cases:
        q_ref, s_ref = quantize_int8_symmetric(w)
        got, failed = call_learner(name, fn, [w.clone()], case=desc)
        if failed is not None:
            return _report(failed, quiet)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': return a pair (q, scale)"), quiet)
        q, scale = got
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': q must be an int8 tensor, got "
                                                   f"{getattr(q, 'dtype', type(q).__name__)}"), quiet)
        msg = explain_mismatch(s_ref, float(scale), what="scale") or explain_mismatch(q_ref, q, what="q", atol=0, rtol=0)
        if msg is None:
            continue
        for wrong, why in _Q_MISTAKES:
            q_w, s_w = wrong(w)
            if explain_mismatch(s_w, float(scale)) is None and torch.equal(q_w, q):
                return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match PyTorch's int8 rule"), quiet)
