"""Checkers for the lab "GRU from scratch" (``labs/03_gru_from_scratch.ipynb``).

The learner writes one GRU step and the loop over time in the book's convention (``z`` is the
update gate: ``h_t = (1 - z) h_{t-1} + z h~_t``) with weights in PyTorch's row layout
``[r, z, n]`` (as produced by :func:`utils.rnn.gru_weights_from_torch`). Each check compares
with :mod:`utils.rnn` (itself tested equal to ``torch.nn.GRU``) and, when a case fails, says
**which gate** or **which time step** differs first, and tries the usual mistakes: PyTorch's
interpolation (the roles of z swapped), the reset gate applied to ``h`` instead of to
``U_h h + b_hn``, the gate rows read in the wrong order, tanh and sigmoid exchanged, the state
not carried between steps, the outputs shifted by one step, the sequence read backwards, the
initial state ignored. Once the values match, the gradients must match too: a state detached at
each step (truncated backpropagation) computes the right outputs and learns nothing long-range.
``check_train_step`` checks the training step of exercise 4 (zero_grad, backward, clipping, step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import (FAIL, PASS, CheckResult, _report, call_learner, describe, explain_gradients,
                          explain_mismatch, guarded)
from utils.checks._train import StepSpec, check_train_step_spec
from utils.checks._validate import tensor_arg
from utils.rnn import CellWeights, gru_cell, run_gru

__all__ = ["check_gru_cell", "check_gru_sequence", "check_train_step", "gru_reference_step"]

_CELL_ARGS = ("x", "h", "W_ih", "W_hh", "b_ih", "b_hh")


def gru_reference_step(x, h, W_ih, W_hh, b_ih, b_hh):
    """The reference for the learner's ``gru_step``: ``(h_new (B, H), {"z", "r", "candidate"})``."""
    tensor_arg("x", x, ndim=2, floating=True, shape="(B, I)")
    tensor_arg("h", h, ndim=2, floating=True, shape="(B, H)")
    for n, w in zip(_CELL_ARGS[2:], (W_ih, W_hh, b_ih, b_hh)):
        tensor_arg(n, w, ndim=2 if n.startswith("W") else 1, floating=True)
    return gru_cell(x, h, CellWeights(W_ih, W_hh, b_ih, b_hh), return_gates=True)


def _variant(x, h, W_ih, W_hh, b_ih, b_hh, *, swap_z=False, reset_before=False, order="rzn", gate_act=torch.sigmoid,
             cand_act=torch.tanh, use_reset=True, use_b_hh=True, b_hn_outside=False):
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + (b_hh if use_b_hh else 0.0)
    parts_i, parts_h = dict(zip(order, gi.chunk(3, 1))), dict(zip(order, gh.chunk(3, 1)))
    r = gate_act(parts_i["r"] + parts_h["r"])
    z = gate_act(parts_i["z"] + parts_h["z"])
    H = h.shape[1]
    if reset_before:  # r * h inside the product, and b_hn outside
        cand = cand_act(parts_i["n"] + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    elif b_hn_outside:  # r * (h U_n), and b_hn added outside the product
        cand = cand_act(parts_i["n"] + r * (h @ W_hh[2 * H:].T) + b_hh[2 * H:])
    else:
        cand = cand_act(parts_i["n"] + (r if use_reset else 1.0) * parts_h["n"])
    h_new = z * h + (1 - z) * cand if swap_z else (1 - z) * h + z * cand
    return h_new, {"z": z, "r": r, "candidate": cand}


_CELL_MISTAKES = [
    (lambda *a: _variant(*a, swap_z=True),
     "the roles of z are swapped (that is PyTorch's formula): in this book h_t = (1 - z) * h_prev + z * candidate"),
    (lambda *a: _variant(*a, order="zrn"),
     "the gate rows are read in the wrong order: the rows of W_ih, W_hh, b_ih, b_hh are stacked [r, z, n]"),
    (lambda *a: _variant(*a, reset_before=True),
     "the reset gate must multiply (h_prev @ U_n.T + b_hn), bias included, as PyTorch does; "
     "you applied it to h_prev before the product"),
    (lambda *a: _variant(*a, b_hn_outside=True),
     "the reset gate must multiply (h_prev @ U_n.T + b_hn), bias included: b_hn goes inside the product with r"),
    (lambda *a: _variant(*a, gate_act=torch.tanh),
     "the gates r and z use a sigmoid (values in (0, 1)), not tanh"),
    (lambda *a: _variant(*a, cand_act=torch.sigmoid),
     "the candidate state uses tanh (values in (-1, 1)), not a sigmoid"),
    (lambda *a: _variant(*a, use_reset=False),
     "the reset gate is not used: candidate = tanh(x W_n + b_in + r * (h_prev U_n + b_hn))"),
    (lambda *a: _variant(*a, use_b_hh=False),
     "the recurrent bias b_hh is missing: compute h @ W_hh.T + b_hh"),
]


def _cell_cases():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    cases = []
    for desc, B, I, H in (("B=2, I=3, H=4", 2, 3, 4), ("B=1, I=1, H=5", 1, 1, 5), ("B=3, I=6, H=2", 3, 6, 2)):
        cases.append((desc, (r(B, I), r(B, H).tanh(), 0.5 * r(3 * H, I), 0.5 * r(3 * H, H), 0.5 * r(3 * H), 0.5 * r(3 * H))))
    return cases


_LABELS = {"r": "the reset gate r", "z": "the update gate z", "candidate": "the candidate state"}


def _cell_verdict(name: str, desc: str, args: tuple, got) -> CheckResult | None:
    expected_h, expected_gates = gru_reference_step(*args)
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], dict)):
        return CheckResult(name, FAIL, f"on case '{desc}': return a pair (h_new, gates) where gates is a dict with "
                                       f"keys 'z', 'r', 'candidate'; got {describe(got)}")
    h_new, gates = got
    missing = sorted({"z", "r", "candidate"} - set(gates))
    if missing:
        return CheckResult(name, FAIL, f"on case '{desc}': the gates dict lacks {missing}")
    if explain_mismatch(expected_gates["r"], gates["z"]) is None and \
            explain_mismatch(expected_gates["z"], gates["r"]) is None and explain_mismatch(expected_h, h_new) is None:
        return CheckResult(name, FAIL, f"on case '{desc}': the gates dict has 'z' and 'r' swapped: gates['z'] must "
                                       "be the update gate (rows H:2H), gates['r'] the reset gate (rows 0:H)")
    for key in ("r", "z", "candidate"):  # the first quantity that differs names the bug
        msg = explain_mismatch(expected_gates[key], gates[key], what=f"gate '{key}'")
        if msg is None:
            continue
        for wrong, why in _CELL_MISTAKES:
            if explain_mismatch(wrong(*args)[1][key], gates[key]) is None:
                return CheckResult(name, FAIL, f"on case '{desc}': {why}")
        return CheckResult(name, FAIL, f"on case '{desc}', {_LABELS[key]} differs: {msg}")
    msg = explain_mismatch(expected_h, h_new, what="h_new")
    if msg is not None:
        if explain_mismatch(_CELL_MISTAKES[0][0](*args)[0], h_new) is None:
            msg = _CELL_MISTAKES[0][1]
        elif explain_mismatch(expected_gates["candidate"], h_new) is None:
            msg = "h_new is the candidate itself: interpolate, h_new = (1 - z) * h_prev + z * candidate"
        return CheckResult(name, FAIL, f"on case '{desc}', the gates are right but h_new differs: {msg}")
    return None


@guarded("gru_step")
def check_gru_cell(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x, h, W_ih, W_hh, b_ih, b_hh) -> (h_new, {"z", "r", "candidate"})``: gate by gate,
    the inputs left unchanged, and the gradients of ``h_new`` with respect to every input."""
    name = "gru_step"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    cases = _cell_cases()
    for desc, args in cases:
        got, failed = call_learner(name, fn, [a.clone() for a in args], case=desc, arg_names=_CELL_ARGS,
                                   frozen=_CELL_ARGS)
        if failed is not None:
            return _report(failed, quiet)
        verdict = _cell_verdict(name, desc, args, got)
        if verdict is not None:
            return _report(verdict, quiet)
    desc, args = cases[0]
    report = explain_gradients(fn, gru_reference_step, args, wrt=range(6), arg_names=_CELL_ARGS, name=name,
                               select=lambda out: [out[0]])
    if report.message:
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {report.message}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference, gate by gate, with the "
                                           "same gradients (tested equal to torch.nn.GRU)"), quiet)


# ------------------------------------------------------------------------------ the loop over time
_SEQ_ARGS = ("X", "W_ih", "W_hh", "b_ih", "b_hh", "h0")


def _seq_cases():
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    H, I = 4, 3
    w = (0.5 * r(3 * H, I), 0.5 * r(3 * H, H), 0.5 * r(3 * H), 0.5 * r(3 * H))
    return [("B=2, T=6, zero initial state", (r(2, 6, I), *w, None)),
            ("B=3, T=4, given initial state h0", (r(3, 4, I), *w, r(3, H).tanh()))]


def _reference_sequence(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    return run_gru(X, CellWeights(W_ih, W_hh, b_ih, b_hh), h0)


def _loop(X, W_ih, W_hh, b_ih, b_hh, h0=None, *, detach=False, carry=True, use_h0=True, shift=False, reverse=False):
    w = CellWeights(W_ih, W_hh, b_ih, b_hh)
    B, T, _ = X.shape
    start = h0 if (h0 is not None and use_h0) else X.new_zeros(B, W_hh.shape[1])
    h, outs = start, []
    for t in (reversed(range(T)) if reverse else range(T)):
        new = gru_cell(X[:, t], h if carry else start, w)
        outs.append(h if shift else new)
        h = new.detach() if detach else new
    if reverse:
        outs = outs[::-1]
    return torch.stack(outs, dim=1), new


_SEQ_MISTAKES = [
    (lambda *a: _loop(*a, shift=True), "the outputs are shifted by one step: outputs[:, t] must be the state AFTER "
                                       "reading X[:, t] (append h after the update, not before)"),
    (lambda *a: _loop(*a, carry=False), "the state is not carried: each step must start from the previous step's h"),
    (lambda *a: _loop(*a, use_h0=False), "the initial state h0 is ignored; start from h0 when it is given"),
    (lambda *a: _loop(*a, reverse=True), "the sequence is read backwards: run t = 0, 1, ..., T - 1"),
]


def _first_wrong_step(expected: torch.Tensor, outputs: torch.Tensor) -> int:
    return next((t for t in range(expected.shape[1])
                 if explain_mismatch(expected[:, t], outputs[:, t]) is not None), 0)


def _seq_verdict(name: str, desc: str, args: tuple, got) -> CheckResult | None:
    X, W_hh = args[0], args[2]
    expected, expected_last = _reference_sequence(*args)
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return CheckResult(name, FAIL, f"on case '{desc}': return a pair (outputs, h_T), got {describe(got)}")
    outputs, last = got
    msg = explain_mismatch(expected, outputs, what="outputs")
    if msg is not None and not (isinstance(outputs, torch.Tensor) and outputs.shape == expected.shape):
        hint = " (outputs must be (B, T, H): stack the states along dim=1)" if isinstance(outputs, torch.Tensor) \
            else ""
        return CheckResult(name, FAIL, f"on case '{desc}': {msg}{hint}")
    if msg is not None:
        for wrong, why in _SEQ_MISTAKES:
            if explain_mismatch(wrong(*args)[0], outputs) is None:
                return CheckResult(name, FAIL, f"on case '{desc}': {why}")
        t = _first_wrong_step(expected, outputs)
        return CheckResult(name, FAIL, f"on case '{desc}', the first wrong state is at time step t={t} (steps "
                                       f"before it are right): {explain_mismatch(expected[:, t], outputs[:, t])}")
    msg = explain_mismatch(expected_last, last, what="h_T")
    if msg is not None:
        return CheckResult(name, FAIL, f"on case '{desc}': outputs are right but h_T is not ({msg}); return the "
                                       "state after the last step, outputs[:, -1]")
    return None


@guarded("gru_sequence")
def check_gru_sequence(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(X, W_ih, W_hh, b_ih, b_hh, h0=None) -> (outputs (B, T, H), h_T (B, H))``: a mismatch
    is reported at its first time step or named; then the gradients through time must match."""
    name = "gru_sequence"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    cases = _seq_cases()
    for desc, args in cases:
        got, failed = call_learner(name, fn, [None if a is None else a.clone() for a in args], case=desc,
                                   arg_names=_SEQ_ARGS, frozen=_SEQ_ARGS)
        if failed is not None:
            return _report(failed, quiet)
        verdict = _seq_verdict(name, desc, args, got)
        if verdict is not None:
            return _report(verdict, quiet)
    desc, args = cases[1]
    report = explain_gradients(fn, _reference_sequence, args, wrt=range(6), arg_names=_SEQ_ARGS, name=name)
    if report.message:
        detached = explain_gradients(lambda *a: _loop(*a, detach=True), _reference_sequence, args, wrt=range(6),
                                     arg_names=_SEQ_ARGS)
        same = all(explain_mismatch(detached.grads[k], report.grads.get(k), atol=1e-7, rtol=1e-5) is None
                   for k in _SEQ_ARGS[:5])  # h0 aside: detached before or after the first step
        why = ("the values are right, but the state is detached between steps (h.detach(), h.data or a "
               "torch.no_grad() step): no gradient flows back through time, so the network cannot learn from "
               "earlier inputs") if same else report.message
        return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference at every time step, and "
                                           "the gradients flow back through time"), quiet)


# ----------------------------------------------------------------------------- the training step
class _TinyRegressor(nn.Module):
    """A stand-in for ScratchGRURegressor: (B, T, I) -> (B,), with gradients large enough that
    clipping the norm at 1 changes the step."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(5 * 2, 1)

    def forward(self, X):
        return self.linear(3.0 * X.flatten(1)).squeeze(-1)


def _regression_batches():
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(8, 5, 2, generator=g), 4 * torch.randn(8, generator=g)) for _ in range(3)]


_RNN_STEP = StepSpec(
    name="train_step",
    make_model=lambda: _TinyRegressor(),
    make_optimizer=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    batches=_regression_batches(),
    call=lambda fn, model, optimizer, batch: fn(model, optimizer, *batch),
    loss=lambda model, batch: F.mse_loss(model(batch[0]), batch[1]),
    clip=1.0,
)


@guarded("train_step")
def check_train_step(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, optimizer, X_batch, y_batch) -> loss (float)``: MSE loss, zero_grad, backward,
    clip the gradient norm at 1, step; three steps on a tiny model must give the reference losses
    and weights."""
    return _report(check_train_step_spec(fn, _RNN_STEP), quiet)
