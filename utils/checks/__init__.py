"""Lab checkers: run a learner's function on fixed cases and explain the first mismatch.

Every check returns (and prints) a :class:`CheckResult` with one of three verdicts:

- ``PASS`` -- every case matches the reference implementation in ``utils``;
- ``FAIL`` -- a plain-words explanation of the first difference (shape, dtype, the first
  position whose value differs, the usual mistake it matches, or the exception the learner's
  code raised, with its likely cause);
- ``NOT YET IMPLEMENTED`` -- the learner's stub still raises ``NotImplementedError``.

A check never raises, whatever the learner's code returns or raises, so a lab notebook with
blanks still runs top to bottom (in strict mode, the instructor copies, a check that does not
PASS raises :class:`StrictCheckFailure`, an ``AssertionError``). Topic checkers live in
submodules (``utils.checks.conv``, ``utils.checks.rnn``, ...).

Shared helpers for checker authors (public, stable):

- :func:`call_learner` -- call the learner's code: ``(value, None)`` or ``(None, verdict)`` for a
  stub, an exception (with a hint for well-known errors, :func:`exception_hint`) or an input
  modified in place (``frozen=``);
- :func:`explain_mismatch` / :func:`describe` -- compare any value with the reference in words;
- :func:`explain_gradients` -- compare the input gradients with the reference's (gradient flow);
- :func:`run_cases` -- the whole loop over fixed :class:`Case` s, with a table of known wrong
  variants (``mistakes=``) that name the bug, in-place checks and a gradient check;
- :func:`check_threshold` -- a measured figure against a target;
- :func:`guarded` -- decorator that makes a checker exception-proof and keeps the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from utils.checks._compare import as_tensor, describe, explain_mismatch, fmt_shape, to_float
from utils.checks._core import (FAIL, PASS, TODO, Case, CheckResult, StrictCheckFailure, _report, attempt,
                                call_learner, changed_arguments, exception_hint, guarded, is_strict, lenient, set_strict)
from utils.checks._grad import CUT_HINT, GradientReport, explain_gradients

__all__ = [
    "CheckResult",
    "Case",
    "explain_mismatch",
    "describe",
    "as_tensor",
    "to_float",
    "run_cases",
    "check_threshold",
    "attempt",
    "call_learner",
    "exception_hint",
    "explain_gradients",
    "GradientReport",
    "changed_arguments",
    "guarded",
    "set_strict",
    "is_strict",
    "lenient",
    "StrictCheckFailure",
    "try_mistakes",
    "PASS",
    "FAIL",
    "TODO",
    "CUT_HINT",
]

_fmt_shape = fmt_shape  # kept for older imports
_as_tensor = as_tensor


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value  # numbers, strings, None, functions, generators: immutable or shared on purpose


Mistake = tuple[Callable[..., Any], str]


def try_mistakes(mistakes: Sequence[Mistake], args: Sequence[Any], got: Any, *,
                 kwargs: dict[str, Any] | None = None, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """The message of the first known wrong variant that reproduces ``got`` on ``args``, else ``None``.
    A variant that raises on these arguments is skipped."""
    for wrong, why in mistakes:
        try:
            value = wrong(*[_clone(a) for a in args], **{k: _clone(v) for k, v in (kwargs or {}).items()})
        except Exception:
            continue
        if explain_mismatch(value, got, atol=atol, rtol=rtol) is None:
            return why
    return None


def run_cases(candidate: Callable[..., Any], reference: Callable[..., Any], cases: Sequence[Case], *,
              name: str, atol: float = 1e-5, rtol: float = 1e-4, quiet: bool = False,
              mistakes: Sequence[Mistake] = (), arg_names: Sequence[str] | None = None,
              frozen: Sequence[str] = (), gradients: Sequence[int] = (), what: str = "output") -> CheckResult:
    """Call ``candidate`` and ``reference`` on each case and compare the results.

    The learner's function gets fresh copies of the arguments (so in-place edits cannot corrupt
    the reference's inputs). Stops at the first failing case and explains it: when a known wrong
    variant in ``mistakes`` (pairs ``(wrong_fn, message)``) reproduces the learner's result, its
    message names the bug. ``frozen`` names arguments (``arg_names`` names the positional ones)
    that must not be modified in place. ``gradients`` lists positions of arguments whose gradient
    must match the reference's once the values do (gradient flow). Never raises for any
    candidate; bad ``cases`` or ``name`` raise ``ValueError``/``TypeError``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not isinstance(cases, Sequence) or isinstance(cases, str) or not all(isinstance(c, Case) for c in cases):
        raise TypeError("cases must be a list of Case objects")
    if not cases:
        raise ValueError("cases must not be empty")
    if not callable(reference):
        raise TypeError(f"reference must be a function, got {type(reference).__name__}")

    @guarded(name)
    def run(quiet: bool = False) -> CheckResult:
        if not callable(candidate):
            return _report(CheckResult(name, FAIL, f"expected a function, got {describe(candidate)}"), quiet)
        def call(case: Case) -> tuple[Any, CheckResult | None]:
            kwargs = case.kwargs or {}
            return call_learner(name, candidate, [_clone(a) for a in case.args],
                                {k: _clone(v) for k, v in kwargs.items()}, case=case.description,
                                arg_names=arg_names, frozen=frozen)

        for i, case in enumerate(cases):
            expected = reference(*case.args, **(case.kwargs or {}))
            got, failed = call(case)
            if failed is not None:
                return _report(failed, quiet)
            msg = explain_mismatch(expected, got, atol=atol, rtol=rtol, what=what)
            if msg:  # a known mistake must reproduce every case the learner's code answers, not just this one
                answers = [(case, got)] + [(c, v) for c, (v, f) in ((c, call(c)) for c in cases[i + 1:]) if f is None]
                why = next((w for wrong, w in mistakes
                            if all(try_mistakes([(wrong, w)], c.args, v, kwargs=c.kwargs, atol=atol, rtol=rtol)
                                   for c, v in answers)), None)
                return _report(CheckResult(name, FAIL, f"on case '{case.description}': {why or msg}"), quiet)
        if gradients:
            for case in cases:
                report = explain_gradients(candidate, reference, case.args, case.kwargs, wrt=gradients,
                                           arg_names=arg_names or [f"argument {i}" for i in range(len(case.args))],
                                           name=name, atol=max(atol, 1e-7), rtol=max(rtol, 1e-5))
                if report.message:
                    return _report(CheckResult(name, FAIL, f"on case '{case.description}': {report.message}"), quiet)
        extra = " (values and gradients)" if gradients else ""
        kept = f", and {', '.join(f'`{n}`' for n in frozen)} left unchanged" if frozen else ""
        return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference{extra}{kept}"), quiet)

    return run(quiet=quiet)


def check_threshold(value: Any, threshold: float, *, name: str, higher_is_better: bool = True,
                    unit: str = "", quiet: bool = False) -> CheckResult:
    """Check a measured figure (an accuracy, a loss) against a target.

    ``value=None`` means the learner has not produced it yet (``NOT YET IMPLEMENTED``); any
    other value that is not one finite number is a FAIL that says what it is.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(threshold)):
        raise TypeError(f"threshold must be a finite number, got {threshold!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")

    @guarded(name)
    def run(quiet: bool = False) -> CheckResult:
        if value is None:
            return _report(CheckResult(name, TODO, "no value yet: run your training cell first."), quiet)
        v = to_float(value)
        if v is None:
            return _report(CheckResult(name, FAIL, f"expected one number, got {describe(value)}"), quiet)
        if math.isnan(v):
            return _report(CheckResult(name, FAIL, "the value is NaN: the training diverged or divided by zero"),
                           quiet)
        ok = v >= threshold if higher_is_better else v <= threshold
        relation = ">=" if higher_is_better else "<="
        if ok:
            return _report(CheckResult(name, PASS, f"{v:.4g}{unit} {relation} {threshold:.4g}{unit}"), quiet)
        return _report(CheckResult(name, FAIL, f"{v:.4g}{unit} does not reach the target "
                                               f"({relation} {threshold:.4g}{unit})"), quiet)

    return run(quiet=quiet)
