"""Checking a learner's ``train_step``: a few steps on a tiny seeded model, compared with the
reference step, and the order of the calls recorded so that the verdict names the mistake.

Labs 3, 5 and 6 each ask for one optimisation step (forward, loss, ``zero_grad``, ``backward``,
perhaps gradient clipping, ``step``, return the loss as a float). The values (losses and final
weights) decide PASS or FAIL; when they differ, the recorded order of ``zero_grad``,
``backward``, ``clip_grad_norm_`` and ``step`` in the learner's first call tells which step is
missing or misplaced, and known wrong variants (a softmax before the cross-entropy, the loss of
a second forward pass) name the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from utils.checks._compare import describe, explain_mismatch, to_float
from utils.checks._core import FAIL, PASS, CheckResult, call_learner

__all__ = ["StepSpec", "check_train_step_spec"]


@dataclass
class StepSpec:
    """What one lab's training step is.

    ``make_model()`` builds the tiny model (seeded by the caller), ``make_optimizer(params)`` its
    optimiser, ``batches`` the arguments besides model and optimizer, ``call(fn, model, optimizer,
    batch)`` calls a step function with the lab's argument order, ``loss(model, batch)`` is the
    forward pass and loss the lab asks for, ``clip`` the max gradient norm (``None``: no clipping).
    """

    name: str
    make_model: Callable[[], nn.Module]
    make_optimizer: Callable[[Any], torch.optim.Optimizer]
    batches: Sequence[tuple]
    call: Callable[[Callable, nn.Module, torch.optim.Optimizer, tuple], Any]
    loss: Callable[[nn.Module, tuple], torch.Tensor]
    clip: float | None = None
    extra_mistakes: Sequence[tuple[Callable, str]] = ()


def reference_step(spec: StepSpec, *, zero_grad: bool = True, clip: bool = True, step: bool = True,
                   second_forward: bool = False) -> Callable:
    """A step function in the lab's argument order (optionally with one piece missing)."""

    def body(model, optimizer, batch):
        loss = spec.loss(model, batch)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if clip and spec.clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.clip)
        if step:
            optimizer.step()
        if second_forward:
            with torch.no_grad():
                return spec.loss(model, batch).item()
        return loss.item()

    return body


@contextlib.contextmanager
def _recording(model: nn.Module, optimizer: torch.optim.Optimizer, events: list[str]) -> Iterator[None]:
    """Log 'zero_grad', 'backward', 'clip' and 'step' in the order they happen."""
    def log(event: str) -> None:
        if not events or events[-1] != event:
            events.append(event)

    def wrap(method, event):
        def inner(*a, **k):
            log(event)
            return method(*a, **k)
        return inner

    original_clip, original_value_clip = torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_
    optimizer.zero_grad = wrap(optimizer.zero_grad, "zero_grad")
    optimizer.step = wrap(optimizer.step, "step")
    model_zero_grad = model.zero_grad
    model.zero_grad = wrap(model.zero_grad, "zero_grad")
    torch.nn.utils.clip_grad_norm_ = wrap(original_clip, "clip")
    torch.nn.utils.clip_grad_value_ = wrap(original_value_clip, "clip_value")
    hooks = [p.register_post_accumulate_grad_hook(lambda _p: log("backward")) for p in model.parameters()]
    try:
        yield
    finally:
        torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_ = original_clip, original_value_clip
        for h in hooks:
            h.remove()
        del optimizer.zero_grad, optimizer.step
        model.zero_grad = model_zero_grad


def _run(spec: StepSpec, step_fn: Callable, *, record: bool = False):
    """Run ``step_fn`` on every batch from the same seeded start: (losses, weights, events of call 1).
    A learner's function (``record=True``) is called in the lab's argument order (``spec.call``),
    a reference or variant as ``step_fn(model, optimizer, batch)``."""
    torch.manual_seed(0)
    model = spec.make_model()
    optimizer = spec.make_optimizer(model.parameters())
    losses, first_events = [], []
    for i, batch in enumerate(spec.batches):
        batch = _fresh(batch)
        events: list[str] = []
        with _recording(model, optimizer, events) if record else contextlib.nullcontext():
            loss = spec.call(step_fn, model, optimizer, batch) if record else step_fn(model, optimizer, batch)
        if i == 0:
            first_events = events
        losses.append(loss)
    return losses, tuple(p.detach().clone() for p in model.parameters()), first_events


def _as_float(loss: Any) -> float | None:
    """A float or a one-element floating tensor (``loss.item()`` or the loss itself) as a float."""
    if isinstance(loss, float):
        return loss
    if isinstance(loss, torch.Tensor) and loss.is_floating_point():
        return to_float(loss)
    return None


def _fresh(batch: Any) -> Any:
    """A copy of a batch (tensors, tuples, dicts), so that a step that edits its inputs in place
    cannot change the next run's data."""
    if isinstance(batch, torch.Tensor):
        return batch.clone()
    if isinstance(batch, (tuple, list)):
        return type(batch)(_fresh(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _fresh(v) for k, v in batch.items()}
    return batch


def _order_problem(events: list[str], clip: bool) -> str | None:
    """Name the misplaced or missing call in one step's event log, or ``None`` if the order is right."""
    first = {e: events.index(e) for e in set(events)}
    if "backward" not in first:
        return "loss.backward() is never called (or nothing reaches the parameters): compute the gradients " \
               "with loss.backward()"
    if "step" not in first:
        return "optimizer.step() is never called, so the weights never change: call it after loss.backward()"
    last = {e: len(events) - 1 - events[::-1].index(e) for e in set(events)}
    if first["step"] < first["backward"]:
        return "optimizer.step() runs before loss.backward(): the order is zero_grad, backward, step"
    if "zero_grad" in first and first["backward"] < last["zero_grad"] < last["step"]:
        return ("optimizer.zero_grad() is called between loss.backward() and optimizer.step(): it erases the "
                "gradients the step needs; call it before loss.backward()")
    if "zero_grad" not in first:
        return "gradients accumulate from one step to the next: call optimizer.zero_grad() before loss.backward()"
    if clip:
        if "clip_value" in first and "clip" not in first:
            return ("the gradient is clipped entry by entry (clip_grad_value_): clip its NORM, "
                    "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
        if "clip" not in first:
            return ("the gradient norm is not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) "
                    "between loss.backward() and optimizer.step()")
        if first["clip"] < first["backward"]:
            return "clip_grad_norm_ runs before loss.backward(), when there is nothing to clip yet: clip after it"
        if first["clip"] > first["step"]:
            return "clip_grad_norm_ runs after optimizer.step(), too late to matter: clip before the step"
    return None


_EXPECTED: dict[int, tuple] = {}


def _expected(spec: StepSpec) -> tuple:
    """The reference run of ``spec`` (deterministic, so computed once per spec)."""
    if id(spec) not in _EXPECTED:
        _EXPECTED[id(spec)] = _run(spec, reference_step(spec))
    return _EXPECTED[id(spec)]


def check_train_step_spec(fn: Callable, spec: StepSpec) -> CheckResult:
    """The verdict for a learner's step function ``fn`` (never raises; the caller reports it)."""
    name = spec.name
    if not callable(fn):
        return CheckResult(name, FAIL, f"expected a function, got {describe(fn)}")
    expected = _expected(spec)
    got, failed = call_learner(name, lambda: _run(spec, fn, record=True), [])
    if failed is not None:
        return failed
    losses, weights, events = got
    floats = [_as_float(v) for v in losses]
    bad = next((v for v, f in zip(losses, floats) if f is None), None) if None in floats else None
    if None in floats:
        return CheckResult(name, FAIL, f"return the loss as a number, `return loss.item()` (got {describe(bad)})")
    msg = explain_mismatch(expected[0], floats, what="losses") or explain_mismatch(expected[1], weights,
                                                                                 what="weights")
    if msg is None:
        return CheckResult(name, PASS, f"{len(spec.batches)} steps on a tiny model give the reference losses and "
                                       "weights")
    why = _order_problem(events, spec.clip is not None)
    # a clip imported by name, or gradients cleared by hand, escape the recording: confirm by the values
    confirm = {"clip_grad_value_": None, "clip": dict(clip=False), "accumulate": dict(zero_grad=False)}
    key = next((k for k in confirm if why is not None and k in why), None)
    key = None if key is not None and confirm[key] is None else key
    if key is not None:
        other = _run(spec, reference_step(spec, **confirm[key]))
        if explain_mismatch(other[0], floats) is not None or explain_mismatch(other[1], weights) is not None:
            why = None
    if why is None:
        variants = [(reference_step(spec, second_forward=True),
                     "the loss you return comes from a second forward pass after the step: return the loss whose "
                     "backward() produced the gradients"), *spec.extra_mistakes]
        for wrong, text in variants:
            try:
                other = _run(spec, wrong)
            except Exception:
                continue
            if explain_mismatch(other[0], floats) is None and explain_mismatch(other[1], weights) is None:
                why = text
                break
    return CheckResult(name, FAIL, why or msg)
