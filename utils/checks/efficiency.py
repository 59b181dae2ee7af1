"""Checkers for the lab "Efficiency" (``labs/07_efficiency.ipynb``).

``check_distillation_loss`` compares the learner's loss with
:func:`utils.efficiency.distillation_loss` and names the usual mistakes (the T² factor missing or
only T, the KL divergence taken the wrong way round or averaged over classes too, probabilities
passed to ``F.kl_div``, the temperature applied to one side only or to the cross-entropy, the
weights alpha and 1 - alpha swapped or missing, a float returned instead of a tensor); then the
gradient with respect to the student's logits must match, so a term computed through ``.item()``
or ``.detach()`` is caught. ``check_quantize_int8`` compares the learner's per-tensor symmetric
int8 quantizer with :func:`utils.efficiency.quantize_int8_symmetric` (itself tested equal to
PyTorch's) and names a wrong scale, truncation instead of rounding, a missing clamp, one scale per
row, a NumPy array instead of a tensor. ``check_size_and_accuracy`` compares the learner's
``(bytes, accuracy)`` with an independent measurement and names the loss in place of the
accuracy, the in-memory size in place of the serialized one, a parameter count, a percentage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import (FAIL, PASS, CheckResult, _report, as_tensor, call_learner, describe, explain_gradients,
                          explain_mismatch, guarded, to_float, try_mistakes)
from utils.efficiency import distillation_loss, model_size_bytes, quantize_int8_symmetric

__all__ = ["check_distillation_loss", "check_quantize_int8", "check_size_and_accuracy"]

_KD_ARGS = ("student_logits", "teacher_logits", "targets", "temperature", "alpha")


def _kd(s, t, y, T, a, *, t2=True, reverse=False, student_t=True, teacher_t=True, swap=False, power=2,
        reduction="batchmean", probs_in=False, ce_t=False, weights=True, soft_ce=False):
    log_s = F.log_softmax(s / (T if student_t else 1.0), -1)
    log_t = F.log_softmax(t / (T if teacher_t else 1.0), -1)
    if probs_in:
        kl = F.kl_div(log_s.exp(), log_t.exp(), reduction="batchmean")
    elif soft_ce:
        kl = -(log_t.exp() * log_s).sum(-1).mean()
    else:
        a_, b_ = (log_s, log_t) if reverse else (log_t, log_s)
        pointwise = a_.exp() * (a_ - b_)  # (N, K)
        kl = {"batchmean": pointwise.sum() / len(s), "mean": pointwise.mean(), "sum": pointwise.sum()}[reduction]
    soft = kl * (T ** power if t2 else 1.0)
    hard = F.cross_entropy(s / T if ce_t else s, y)
    if not weights:
        return soft + hard
    return (1 - a) * soft + a * hard if swap else a * soft + (1 - a) * hard


def _kd_variant(**flags) -> Callable:
    def loss(student_logits, teacher_logits, targets, temperature, alpha):
        return _kd(student_logits, teacher_logits, targets, temperature, alpha, **flags)
    return loss


_KD_MISTAKES = [
    (_kd_variant(t2=False), "the soft term is not multiplied by T²: without it its gradients shrink as 1/T²"),
    (_kd_variant(power=1), "the soft term is multiplied by T, not by T²"),
    (_kd_variant(reverse=True), "the KL divergence is the wrong way round: it must be KL(p_teacher || p_student) "
                                "= sum p_t (log p_t - log p_s)"),
    (_kd_variant(student_t=False), "the student's logits must be divided by the temperature too"),
    (_kd_variant(teacher_t=False), "the teacher's logits must be divided by the temperature too"),
    (_kd_variant(swap=True), "alpha weighs the soft (teacher) term and 1 - alpha the cross-entropy; they are swapped"),
    (_kd_variant(weights=False), "the two terms are not weighted: alpha * soft + (1 - alpha) * cross-entropy"),
    (_kd_variant(reduction="mean"), "the KL is averaged over the classes too (reduction='mean'): sum over the "
                                    "classes and average over the batch, reduction='batchmean'"),
    (_kd_variant(reduction="sum"), "the KL is summed over the batch: average it over the examples, "
                                   "reduction='batchmean'"),
    (_kd_variant(probs_in=True), "F.kl_div expects log-probabilities as its first argument (F.log_softmax), not "
                                 "probabilities"),
    (_kd_variant(soft_ce=True), "the soft term is the cross-entropy with the teacher's probabilities, not the KL "
                                "divergence: the two differ by the teacher's entropy (the same gradients, another "
                                "value); compute sum p_t (log p_t - log p_s)"),
    (_kd_variant(ce_t=True), "the cross-entropy uses the student's raw logits, not the logits divided by T"),
]


def _kd_cut(part: str) -> Callable:
    def loss(s, t, y, T, a):
        soft = a * T * T * F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True,
                                    reduction="batchmean")
        hard = (1 - a) * F.cross_entropy(s, y)
        return soft.detach() + hard if part == "soft" else soft + hard.detach()
    return loss


def _kd_gradient_cut(args: tuple, grads: torch.Tensor | None) -> str | None:
    """Name the term that passes no gradient when the learner's gradient equals the other term's."""
    for part, why in (("soft", "the soft (KL) term"), ("hard", "the cross-entropy term")):
        cut = explain_gradients(_kd_cut(part), distillation_loss, args, wrt=(0,), arg_names=_KD_ARGS)
        g = cut.grads.get("student_logits")
        if grads is not None and g is not None and explain_mismatch(g, grads, atol=1e-9, rtol=1e-6) is None:
            return (f"the value is right, but {why} passes no gradient to the student: it goes through .item(), "
                    ".detach() or torch.no_grad(); keep the whole loss a tensor")
    return None


@guarded("distillation_loss")
def check_distillation_loss(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(student_logits (N, K), teacher_logits (N, K), targets (N,), temperature, alpha) -> scalar``:
    the value on four cases, then the gradient with respect to the student's logits."""
    name = "distillation_loss"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
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
        if isinstance(got, (float, int, np.floating)) and not isinstance(got, bool):
            if explain_mismatch(expected.item(), got) is None:
                return _report(CheckResult(name, FAIL, f"on case '{desc}': the value is right, but return the loss as "
                                                       "a tensor (no .item()), so that loss.backward() works"), quiet)
        msg = explain_mismatch(expected, got, what="loss")
        if msg is None:
            continue
        why = try_mistakes(_KD_MISTAKES, args, got)
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {why or msg}"), quiet)
    desc, args = cases[1]
    report = explain_gradients(fn, distillation_loss, args, wrt=(0,), arg_names=_KD_ARGS, name=name)
    if report.message:
        why = _kd_gradient_cut(args, report.grads.get("student_logits"))
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {why or report.message}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference, and so does the gradient "
                                           "with respect to the student's logits"), quiet)


def _quant(w, *, divisor=127.5, rounding="round", clamp=True, use_abs=True):
    top = w.abs().max() if use_abs else w.max()
    scale = (top / divisor).clamp(min=torch.finfo(torch.float32).eps) if use_abs else top / divisor
    q = w / scale
    q = torch.round(q) if rounding == "round" else torch.trunc(q)
    if clamp:
        q = q.clamp(-128, 127)
    return q.to(torch.int8), scale.item()


def _q_variant(**flags) -> Callable:
    def quantize_int8(w):
        return _quant(w, **flags)
    return quantize_int8


_Q_MISTAKES = [
    (_q_variant(divisor=127.0), "the scale must be max|w| / 127.5 (int8 spans 255 steps, from -128 to 127)"),
    (_q_variant(divisor=255.0), "the scale must be max|w| / 127.5: symmetric quantization uses both signs"),
    (_q_variant(divisor=128.0), "the scale must be max|w| / 127.5, not max|w| / 128"),
    (_q_variant(rounding="trunc"), "w / scale is truncated (casting to int8 cuts the fraction off): round it "
                                   "first with torch.round"),
    (_q_variant(clamp=False), "the values are not clamped to [-128, 127] before the cast to int8"),
    (_q_variant(use_abs=False), "the scale uses max(w); symmetric quantization needs the largest magnitude, "
                                "w.abs().max()"),
]


def _scale_value(scale, w: torch.Tensor) -> tuple[float | None, str | None]:
    """The scale as a float, or a message saying why it is not one number."""
    value = to_float(scale)
    t = as_tensor(scale)
    if value is not None and (t is None or t.is_floating_point()):
        return value, None
    if t is not None and w.ndim == 2 and t.numel() == w.shape[0] and t.numel() > 1:
        return None, (f"you returned one scale per row ({describe(scale)}): that is per-channel quantization, the "
                      "lab's exercise 2; this check tests the per-tensor rule, ONE scale s = w.abs().max() / 127.5, "
                      "returned as a Python float (s.item())")
    return None, f"scale must be one number (a Python float, scale.item()), got {describe(scale)}"


@guarded("quantize_int8")
def check_quantize_int8(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(w) -> (q int8 tensor of w's shape, scale float)``."""
    name = "quantize_int8"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    g = torch.Generator().manual_seed(1)
    cases = [("a (4, 6) weight matrix", torch.randn(4, 6, generator=g)),
             ("a vector with one large value", torch.cat([torch.randn(9, generator=g) * 0.1, torch.tensor([3.0])])),
             ("all weights negative", -torch.rand(3, 3, generator=g) - 0.5)]
    for desc, w in cases:
        q_ref, s_ref = quantize_int8_symmetric(w)
        got, failed = call_learner(name, fn, [w.clone()], case=desc, arg_names=("w",), frozen=("w",))
        if failed is not None:
            return _report(failed, quiet)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': return a pair (q, scale), got {describe(got)}"),
                           quiet)
        q, scale = got
        if isinstance(q, np.ndarray):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': q must be a torch.Tensor of dtype torch.int8, "
                                                   f"got {describe(q)}: stay in torch"), quiet)
        if not isinstance(q, torch.Tensor):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': q must be a torch.Tensor of dtype torch.int8, "
                                                   f"got {describe(q)}"), quiet)
        if q.dtype != torch.int8:
            hint = ": a quantized tensor's integers are q.int_repr()" if q.dtype == torch.qint8 else ""
            return _report(CheckResult(name, FAIL, f"on case '{desc}': q must have dtype torch.int8 (.to(torch.int8) "
                                                   f"after rounding and clamping), got {q.dtype}{hint}"), quiet)
        s_val, why = _scale_value(scale, w)
        if why:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
        msg = explain_mismatch(s_ref, s_val, what="scale") or explain_mismatch(q_ref, q, what="q", atol=0, rtol=0)
        if msg is None:
            continue
        why = try_mistakes(_Q_MISTAKES, (w,), (q, s_val))
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {why or msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match PyTorch's int8 rule"), quiet)


def _reference_measures(model: nn.Module, loader) -> dict[str, float]:
    from utils.training import evaluate

    loss, acc = evaluate(model, loader, device="cpu")
    params = list(model.parameters())
    return {"bytes": float(model_size_bytes(model)), "accuracy": acc, "loss": loss,
            "unserialized": float(model_size_bytes(model, serialized=False)),
            "parameters": float(sum(p.numel() for p in params))}


def _size_problem(size: float, ref: dict[str, float]) -> str | None:
    if size == ref["bytes"]:
        return None
    if size == ref["unserialized"]:
        return ("the size is the in-memory size of the parameters and buffers, which leaves out the int8 weights of "
                "quantized layers (they are not Parameters): use model_size_bytes(model), which serialises the "
                "state dict")
    if size == ref["parameters"]:
        return "the size is a parameter count, not bytes: use model_size_bytes(model)"
    if abs(size - ref["bytes"] / 1e6) < 1e-9 or abs(size - ref["bytes"] / 2 ** 20) < 1e-9:
        return "the size is in megabytes: return bytes, model_size_bytes(model)"
    return f"the size should be model_size_bytes(model) = {int(ref['bytes'])} bytes, got {size:g}"


def _accuracy_problem(acc: float, ref: dict[str, float]) -> str | None:
    if abs(acc - ref["accuracy"]) <= 1e-6:  # a float32 tensor of the accuracy is fine
        return None
    if abs(acc - ref["loss"]) <= 1e-6:
        return "the second value is the test loss: evaluate returns (loss, accuracy), take evaluate(...)[1]"
    if abs(acc - 100 * ref["accuracy"]) <= 1e-4:
        return "the accuracy is a percentage: return the fraction in [0, 1]"
    return (f"the accuracy should be evaluate(model, flat_test)[1] = {ref['accuracy']:.4f} on the test set, got "
            f"{acc:.4g}")


def check_size_and_accuracy(fn: Callable, models: nn.Module | Sequence[nn.Module], loader, *,
                            quiet: bool = False) -> CheckResult:
    """Check ``fn(model) -> (bytes, accuracy)`` on each of ``models`` against an independent
    measurement: ``model_size_bytes(model)`` and the accuracy of ``utils.training.evaluate`` on
    ``loader`` (the test set the learner's function uses). Bad ``models`` raise ``TypeError``."""
    models = [models] if isinstance(models, nn.Module) else list(models) if isinstance(models, (list, tuple)) else None
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError(f"models must be an nn.Module or a list of them, got {describe(models)}")
    return _check_size_and_accuracy(fn, models, loader, quiet=quiet)


@guarded("size_and_accuracy")
def _check_size_and_accuracy(fn: Callable, models: list[nn.Module], loader, *, quiet: bool = False) -> CheckResult:
    name = "size_and_accuracy"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    for i, model in enumerate(models):
        ref = _reference_measures(model, loader)
        label = f"model {i + 1} of {len(models)} ({type(model).__name__}, {int(ref['bytes'])} bytes)"
        got, failed = call_learner(name, fn, [model], case=label)
        if failed is not None:
            return _report(failed, quiet)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return _report(CheckResult(name, FAIL, f"on {label}: return a pair (bytes, accuracy), got {describe(got)}"),
                           quiet)
        values = [to_float(v) for v in got]
        if None in values:
            return _report(CheckResult(name, FAIL, f"on {label}: return two numbers (bytes, accuracy), got "
                                                   f"{describe(got[0])} and {describe(got[1])}"), quiet)
        size, acc = values
        if size == ref["accuracy"] and acc == ref["bytes"]:
            return _report(CheckResult(name, FAIL, f"on {label}: the pair is swapped: return (bytes, accuracy)"), quiet)
        why = _size_problem(size, ref) or _accuracy_problem(acc, ref)
        if why:
            return _report(CheckResult(name, FAIL, f"on {label}: {why}"), quiet)
    return _report(CheckResult(name, PASS, f"the size and the accuracy of all {len(models)} models match an "
                                           "independent measurement"), quiet)
