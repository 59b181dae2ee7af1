"""Lab checkers: run a learner's function on fixed cases and explain the first mismatch.

Every check returns (and prints) a :class:`CheckResult` with one of three verdicts:

- ``PASS`` -- every case matches the reference implementation in ``utils``;
- ``FAIL`` -- a plain-words explanation of the first difference (shape, dtype, the first
  position whose value differs, or the exception the learner's code raised);
- ``NOT YET IMPLEMENTED`` -- the learner's stub still raises ``NotImplementedError``.

A check never raises, so a lab notebook with blanks still runs top to bottom. Topic
checkers live in submodules (``utils.checks.conv``, ``utils.checks.rnn``, ...) and are
built from :func:`run_cases` and :func:`check_threshold`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckResult",
    "Case",
    "explain_mismatch",
    "run_cases",
    "check_threshold",
    "attempt",
    "set_strict",
    "PASS",
    "FAIL",
    "TODO",
]

PASS, FAIL, TODO = "PASS", "FAIL", "NOT YET IMPLEMENTED"
_ICONS = {PASS: "✅", FAIL: "❌", TODO: "⏳"}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check. ``status`` is ``PASS``, ``FAIL`` or ``NOT YET IMPLEMENTED``."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        return f"{_ICONS[self.status]} {self.status} [{self.name}] {self.message}"

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class Case:
    """One test case: a short description shown to the learner and the call's arguments."""

    description: str
    args: tuple = ()
    kwargs: dict | None = None


def _fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _as_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return None


def explain_mismatch(expected: Any, got: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
                     what: str = "output") -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying how it differs.

    Handles tensors and arrays (type, shape, NaNs, the first differing position), tuples and
    lists of them (element by element) and plain numbers.
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{what}: expected a tuple of {len(expected)} items, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{what}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            msg = explain_mismatch(e, g, atol=atol, rtol=rtol, what=f"{what}[{i}]")
            if msg:
                return msg
        return None
    e_t = _as_tensor(expected)
    if e_t is None:  # a plain number or object
        if isinstance(expected, (int, float)) and isinstance(got, (int, float, np.number)):
            if abs(float(got) - float(expected)) <= atol + rtol * abs(float(expected)):
                return None
            return f"{what}: expected {expected:.6g}, got {float(got):.6g}"
        return None if got == expected else f"{what}: expected {expected!r}, got {got!r}"
    g_t = _as_tensor(got)
    if g_t is None:
        return f"{what}: expected a torch.Tensor of shape {_fmt_shape(e_t.shape)}, got {type(got).__name__}"
    if tuple(g_t.shape) != tuple(e_t.shape):
        return f"{what}: expected shape {_fmt_shape(e_t.shape)}, got shape {_fmt_shape(g_t.shape)}"
    if e_t.dtype == torch.bool or not (e_t.is_floating_point() or e_t.is_complex()):
        diff = g_t.detach().cpu() != e_t.detach().cpu()
    else:
        g_f = g_t.detach().cpu().to(torch.float64)
        e_f = e_t.detach().cpu().to(torch.float64)
        if torch.isnan(g_f).any() and not torch.isnan(e_f).any():
            pos = tuple(torch.nonzero(torch.isnan(g_f))[0].tolist())
            return f"{what}: contains NaN (first at position {pos}); the reference has none"
        diff = ~torch.isclose(g_f, e_f, atol=atol, rtol=rtol, equal_nan=True)
    if not diff.any():
        return None
    pos = tuple(torch.nonzero(diff)[0].tolist())
    n_bad, n_all = int(diff.sum()), diff.numel()
    e_val, g_val = e_t[pos].item(), g_t[pos].item()
    return (f"{what}: {n_bad} of {n_all} values differ; first at position {pos}: "
            f"expected {e_val:.6g}, got {g_val:.6g}")


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:  # modules with hooks, generators...
        return value


_STRICT = False


def set_strict(strict: bool = True) -> None:
    """Instructor copies of the labs call ``set_strict(True)``: from then on a check that does
    not PASS raises ``AssertionError``, so CI fails when a solution stops passing its checker.
    Learner copies stay lenient: a check only prints its verdict."""
    global _STRICT
    _STRICT = bool(strict)


def _report(result: CheckResult, quiet: bool) -> CheckResult:
    if not quiet:
        print(result)
    if _STRICT and not result.passed:
        raise AssertionError(f"strict mode (instructor copy): {result}")
    return result


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a learner's function; return ``None`` (and say so) if it is still a stub.

    Lets a lab cell such as ``model = attempt(build_model)`` run before the exercise is done.
    Other exceptions propagate: they are real bugs the learner should see.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        name = getattr(fn, "__name__", "this function")
        print(f"{_ICONS[TODO]} {TODO} [{name}] fill in `{name}` above, then run this cell again.")
        if _STRICT:
            raise
        return None


def call_learner(name: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None, *,
                 case: str = "") -> tuple[Any, CheckResult | None]:
    """Call a learner's function inside a checker: ``(value, None)`` on success, or
    ``(None, verdict)`` with NOT YET IMPLEMENTED for a stub and FAIL naming the exception (no
    traceback) for any other error."""
    try:
        return fn(*args, **(kwargs or {})), None
    except NotImplementedError:
        return None, CheckResult(name, TODO, f"`{name}` still raises NotImplementedError: "
                                             "replace the `raise` line with your code.")
    except Exception as exc:  # the learner's bug, reported without a traceback
        where = f"on case '{case}' " if case else ""
        return None, CheckResult(name, FAIL, f"{where}your code raised {type(exc).__name__}: {exc}")


def run_cases(candidate: Callable[..., Any], reference: Callable[..., Any], cases: Sequence[Case], *,
              name: str, atol: float = 1e-5, rtol: float = 1e-4, quiet: bool = False) -> CheckResult:
    """Call ``candidate`` and ``reference`` on each case and compare the results.

    The learner's function gets fresh copies of the arguments (so in-place edits cannot
    corrupt the reference's inputs). Stops at the first failing case and explains it.
    """
    if not callable(candidate):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(candidate).__name__}"), quiet)
    if not cases:
        raise ValueError("cases must not be empty")
    for case in cases:
        kwargs = case.kwargs or {}
        expected = reference(*case.args, **kwargs)
        try:
            got = candidate(*[_clone(a) for a in case.args], **{k: _clone(v) for k, v in kwargs.items()})
        except NotImplementedError:
            return _report(CheckResult(name, TODO, f"`{name}` still raises NotImplementedError: "
                                                   "replace the `raise` line with your code."), quiet)
        except Exception as exc:  # the learner's bug, reported without a traceback
            return _report(CheckResult(name, FAIL, f"on case '{case.description}' your code raised "
                                                   f"{type(exc).__name__}: {exc}"), quiet)
        msg = explain_mismatch(expected, got, atol=atol, rtol=rtol)
        if msg:
            return _report(CheckResult(name, FAIL, f"on case '{case.description}': {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match the reference"), quiet)


def check_threshold(value: float | None, threshold: float, *, name: str, higher_is_better: bool = True,
                    unit: str = "", quiet: bool = False) -> CheckResult:
    """Check a measured figure (an accuracy, a loss) against a target.

    ``value=None`` means the learner has not produced it yet (``NOT YET IMPLEMENTED``).
    """
    if value is None:
        return _report(CheckResult(name, TODO, "no value yet: run your training cell first."), quiet)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _report(CheckResult(name, FAIL, f"expected a number, got {type(value).__name__}"), quiet)
    ok = v >= threshold if higher_is_better else v <= threshold
    relation = ">=" if higher_is_better else "<="
    if ok:
        return _report(CheckResult(name, PASS, f"{v:.4g}{unit} {relation} {threshold:.4g}{unit}"), quiet)
    return _report(CheckResult(name, FAIL, f"{v:.4g}{unit} does not reach the target "
                                           f"({relation} {threshold:.4g}{unit})"), quiet)
