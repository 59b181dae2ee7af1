"""Checkers for the lab "GRU from scratch" (``labs/03_gru_from_scratch.ipynb``).

The learner writes one GRU step and the loop over time in the book's convention (``z`` is the
update gate: ``h_t = (1 - z) h_{t-1} + z h~_t``) with weights in PyTorch's row layout
``[r, z, n]`` (as produced by :func:`utils.rnn.gru_weights_from_torch`). Each check compares
with :mod:`utils.rnn` (itself tested equal to ``torch.nn.GRU``) and, when a case fails, says
**which gate** or **which time step** differs first, and tries the usual mistakes: PyTorch's
interpolation (the roles of z swapped), the reset gate applied to ``h`` instead of to
``U_h h + b_hn``, the gate rows read in the wrong order, the state not carried between steps,
the initial state ignored.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils.checks import FAIL, PASS, CheckResult, _report, call_learner, explain_mismatch
from utils.rnn import CellWeights, gru_cell, run_gru

__all__ = ["check_gru_cell", "check_gru_sequence", "gru_reference_step"]


def gru_reference_step(x, h, W_ih, W_hh, b_ih, b_hh):
    """The reference for the learner's ``gru_step``: ``(h_new (B, H), {"z", "r", "candidate"})``."""
    return gru_cell(x, h, CellWeights(W_ih, W_hh, b_ih, b_hh), return_gates=True)


def _variant(x, h, W_ih, W_hh, b_ih, b_hh, *, swap_z=False, reset_before=False, order="rzn"):
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    parts_i, parts_h = dict(zip(order, gi.chunk(3, 1))), dict(zip(order, gh.chunk(3, 1)))
    r = torch.sigmoid(parts_i["r"] + parts_h["r"])
    z = torch.sigmoid(parts_i["z"] + parts_h["z"])
    H = h.shape[1]
    if reset_before:  # r * h inside the product, and b_hn outside
        cand = torch.tanh(parts_i["n"] + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
    else:
        cand = torch.tanh(parts_i["n"] + r * parts_h["n"])
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
]


def _cell_cases():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    cases = []
    for desc, B, I, H in (("B=2, I=3, H=4", 2, 3, 4), ("B=1, I=1, H=5", 1, 1, 5), ("B=3, I=6, H=2", 3, 6, 2)):
        cases.append((desc, (r(B, I), r(B, H).tanh(), 0.5 * r(3 * H, I), 0.5 * r(3 * H, H), 0.5 * r(3 * H), 0.5 * r(3 * H))))
    return cases


def check_gru_cell(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(x, h, W_ih, W_hh, b_ih, b_hh) -> (h_new, {"z", "r", "candidate"})``."""
    name = "gru_step"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    cases = _cell_cases()
    for desc, args in cases:
        expected_h, expected_gates = gru_reference_step(*args)
        got, failed = call_learner(name, fn, [a.clone() for a in args], case=desc)
        if failed is not None:
            return _report(failed, quiet)
        if not (isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], dict)):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': return a pair (h_new, gates) where gates is "
                                                   "a dict with keys 'z', 'r', 'candidate'"), quiet)
        h_new, gates = got
        missing = {"z", "r", "candidate"} - set(gates)
        if missing:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': the gates dict lacks {sorted(missing)}"), quiet)
        for key in ("r", "z", "candidate"):  # the first quantity that differs names the bug
            msg = explain_mismatch(expected_gates[key], gates[key], what=f"gate '{key}'")
            if msg is None:
                continue
            for wrong, why in _CELL_MISTAKES:
                if explain_mismatch(wrong(*args)[1][key], gates[key]) is None and "shape" not in msg:
                    return _report(CheckResult(name, FAIL, f"on case '{desc}': {why}"), quiet)
            label = {"r": "the reset gate r", "z": "the update gate z", "candidate": "the candidate state"}[key]
            return _report(CheckResult(name, FAIL, f"on case '{desc}', {label} differs: {msg}"), quiet)
        msg = explain_mismatch(expected_h, h_new, what="h_new")
        if msg is not None:
            if explain_mismatch(_CELL_MISTAKES[0][0](*args)[0], h_new) is None:
                msg = _CELL_MISTAKES[0][1]
            return _report(CheckResult(name, FAIL, f"on case '{desc}', the gates are right but h_new differs: {msg}"),
                           quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference, gate by gate "
                                           "(tested equal to torch.nn.GRU)"), quiet)


def _seq_cases():
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    H, I = 4, 3
    w = (0.5 * r(3 * H, I), 0.5 * r(3 * H, H), 0.5 * r(3 * H), 0.5 * r(3 * H))
    return [("B=2, T=6, zero initial state", (r(2, 6, I), *w, None)),
            ("B=3, T=4, given initial state h0", (r(3, 4, I), *w, r(3, H).tanh()))]


def check_gru_sequence(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(X, W_ih, W_hh, b_ih, b_hh, h0=None) -> (outputs (B, T, H), h_T (B, H))``; a mismatch
    is reported at its first time step."""
    name = "gru_sequence"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    cases = _seq_cases()
    for desc, (X, W_ih, W_hh, b_ih, b_hh, h0) in cases:
        w = CellWeights(W_ih, W_hh, b_ih, b_hh)
        expected, expected_last = run_gru(X, w, h0)
        got, failed = call_learner(name, fn, [X.clone(), W_ih.clone(), W_hh.clone(), b_ih.clone(), b_hh.clone(),
                                               None if h0 is None else h0.clone()], case=desc)
        if failed is not None:
            return _report(failed, quiet)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return _report(CheckResult(name, FAIL, f"on case '{desc}': return a pair (outputs, h_T)"), quiet)
        outputs, last = got
        msg = explain_mismatch(expected, outputs, what="outputs")
        if msg is not None and "shape" in msg:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': {msg} (outputs must be (B, T, H), "
                                                   "stack the states along dim=1)"), quiet)
        if msg is not None:
            t = next(t for t in range(X.shape[1]) if explain_mismatch(expected[:, t], outputs[:, t]) is not None)
            hint = ""
            zeros = X.new_zeros(X.shape[0], W_hh.shape[1])
            if t == 0 and h0 is not None and explain_mismatch(run_gru(X, w, None)[0], outputs) is None:
                hint = ": the initial state h0 is ignored; start from h0 when it is given"
            elif t > 0 and explain_mismatch(gru_cell(X[:, t], zeros, w), outputs[:, t]) is None:
                hint = ": the state is not carried: each step must start from the previous step's h"
            return _report(CheckResult(name, FAIL, f"on case '{desc}', the first wrong state is at time step t={t}"
                                                   f"{hint or ' (steps before it are right)'}"), quiet)
        msg = explain_mismatch(expected_last, last, what="h_T")
        if msg is not None:
            return _report(CheckResult(name, FAIL, f"on case '{desc}': outputs are right but h_T is not ({msg}); "
                                                   "return the state after the last step"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference at every time step"), quiet)
