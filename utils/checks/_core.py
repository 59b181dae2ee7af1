"""The verdict type, strict mode, and calling a learner's code safely (see :mod:`utils.checks`)."""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["CheckResult", "Case", "PASS", "FAIL", "TODO", "StrictCheckFailure", "set_strict", "attempt",
           "call_learner", "exception_hint", "guarded", "changed_arguments", "stub_verdict", "lenient", "is_strict"]

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
        return f"{_ICONS.get(self.status, '?')} {self.status} [{self.name}] {self.message}"

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class Case:
    """One test case: a short description shown to the learner and the call's arguments."""

    description: str
    args: tuple = ()
    kwargs: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.description, str):
            raise TypeError(f"description must be a str, got {type(self.description).__name__}")
        if not isinstance(self.args, tuple):
            raise TypeError(f"args must be a tuple, got {type(self.args).__name__}")
        if self.kwargs is not None and not isinstance(self.kwargs, dict):
            raise TypeError(f"kwargs must be a dict or None, got {type(self.kwargs).__name__}")


class StrictCheckFailure(AssertionError):
    """Raised in strict mode (instructor copies) when a check does not PASS."""


_STRICT = False


def set_strict(strict: bool = True) -> None:
    """Instructor copies of the labs call ``set_strict(True)``: from then on a check that does
    not PASS raises ``AssertionError``, so CI fails when a solution stops passing its checker.
    Learner copies stay lenient: a check only prints its verdict."""
    global _STRICT
    if not isinstance(strict, (bool, np.bool_)):
        raise TypeError(f"strict must be True or False, got {type(strict).__name__} {strict!r}")
    _STRICT = bool(strict)


def is_strict() -> bool:
    """Whether strict mode (instructor copies) is on."""
    return _STRICT


@contextlib.contextmanager
def lenient() -> Iterator[None]:
    """Strict mode off inside the block: for a checker that runs another checker to look closer."""
    global _STRICT
    saved, _STRICT = _STRICT, False
    try:
        yield
    finally:
        _STRICT = saved


def _report(result: CheckResult, quiet: bool) -> CheckResult:
    if not quiet:
        print(result)
    if _STRICT and not result.passed:
        raise StrictCheckFailure(f"strict mode (instructor copy): {result}")
    return result


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a learner's function; return ``None`` (and say so) if it is still a stub.

    Lets a lab cell such as ``model = attempt(build_model)`` run before the exercise is done.
    Other exceptions propagate: they are real bugs the learner should see.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        if not _is_stub(exc):
            raise
        name = getattr(fn, "__name__", "this function")
        print(f"{_ICONS[TODO]} {TODO} [{name}] fill in `{name}` above, then run this cell again.")
        if _STRICT:
            raise
        return None


def _is_stub(exc: NotImplementedError) -> bool:
    """A learner's ``raise NotImplementedError`` (a blank), not one raised inside torch for a dtype."""
    text = _short(exc, 2000)
    if "not implemented for" in text:  # torch: "'addmm' not implemented for 'Half'"
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return not (frames and "/torch/" in frames[-1].filename.replace("\\", "/"))


def stub_verdict(name: str) -> CheckResult:
    return CheckResult(name, TODO, f"`{name}` (or a function it calls) still raises NotImplementedError: "
                                   "replace the `raise` line with your code.")


# Known error messages -> what the learner most likely did. Checked in order; the first match wins.
_HINTS: list[tuple[tuple[str, ...], str]] = [
    (("does not require grad and does not have a grad_fn",),
     "the loss is cut off from the graph: a .detach(), .item(), torch.no_grad() or a tensor rebuilt from "
     "numbers sits between the parameters and the loss"),
    (("view size is not compatible with input tensor",),
     "after a transpose the tensor is not contiguous: use .reshape(...) (or .contiguous().view(...))"),
    (("leaf Variable that requires grad is being used in an in-place operation",),
     "do not modify an input in place (x += ..., x *= ..., x.mul_(...)): compute a new tensor, x = x * ..."),
    (("modified by an inplace operation",),
     "an in-place operation (+=, *=, a method ending in _) changed a tensor that autograd needs: write "
     "x = x + ... instead"),
    (("Expected all tensors to be on the same device",),
     "create new tensors on the inputs' device: x.new_zeros(...) or device=x.device"),
    (("probability tensor contains either", "invalid multinomial distribution"),
     "torch.multinomial needs probabilities (non-negative, no NaN, not all zero): sample from the output of "
     "filter_logits, not from the raw logits"),
    (("expected scalar type", "must have the same dtype", "expected m1 and m2 to have the same dtype",
      "Found dtype"),
     "tensors of two dtypes meet: create new tensors in the inputs' dtype (x.new_zeros(...), dtype=x.dtype)"),
    (("object has no attribute 'backward'",),
     "call .backward() on the loss tensor; use .item() only for the number you return"),
    (("'NoneType' object", "NoneType"),
     "a value is None here: handle optional arguments (bias=None, h0=None, top_k=None, ...) with "
     "`if ... is not None`"),
    (("mat1 and mat2 shapes cannot be multiplied", "size mismatch"),
     "the matrix shapes do not fit: check which operand needs a transpose (.T, .transpose(-2, -1)) and that "
     "F.linear(x, W) already computes x @ W.T"),
    (("The size of tensor a",),
     "two shapes do not broadcast: print the shapes, and keep a size-1 axis (keepdim=True or unsqueeze) where "
     "one operand has fewer dimensions"),
    (("numpy() on Tensor that requires grad", "Can't call numpy() on Tensor"),
     "stay in torch: NumPy cannot follow gradients (and .numpy() fails on tensors that require grad)"),
    (("required positional argument",),
     "keep the signature the lab gives, default values included (e.g. bias=None, h0=None)"),
    (("got an unexpected keyword argument", "got multiple values for argument"),
     "keep the parameter names and order of the signature the lab gives"),
    (("has no attribute 'ndim'", "has no attribute 'shape'", "has no attribute 'dim'"),
     "a value that should be a tensor is not one here"),
]


def exception_hint(exc: BaseException) -> str:
    """A hint naming the likely cause of a learner's exception, or ``""`` for an unknown one."""
    text = f"{type(exc).__name__}: {_short(exc, 2000)}"
    for patterns, hint in _HINTS:
        if any(p in text for p in patterns):
            return hint
    return ""


def _short(exc: BaseException, limit: int = 300) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # an exception whose __str__ fails
        return "(its message could not be printed)"
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _snapshot(values: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in values.items()
            if isinstance(v, torch.Tensor) and v.layout == torch.strided and v.device.type != "meta"}


def changed_arguments(before: Mapping[str, torch.Tensor], after: Mapping[str, Any]) -> list[str]:
    """Names whose tensor in ``after`` no longer equals its copy in ``before`` (in-place edits)."""
    changed = []
    for k, old in before.items():
        new = after.get(k)
        if not isinstance(new, torch.Tensor) or new.shape != old.shape or new.dtype != old.dtype:
            changed.append(k)
            continue
        same = (new.detach() == old) | (torch.isnan(new.detach()) & torch.isnan(old)) \
            if old.is_floating_point() else new.detach() == old
        if not bool(same.all()):
            changed.append(k)
    return changed


def call_learner(name: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None = None, *,
                 case: str = "", arg_names: Sequence[str] | None = None,
                 frozen: Iterable[str] = ()) -> tuple[Any, CheckResult | None]:
    """Call a learner's function inside a checker: ``(value, None)`` on success, or
    ``(None, verdict)`` with NOT YET IMPLEMENTED for a stub and FAIL naming the exception (no
    traceback, plus a hint for well-known errors) for any other error.

    ``frozen`` names arguments the learner must not modify in place (``arg_names`` gives the
    names of the positional ``args``; keyword arguments go by their key): if one changes, the
    verdict is FAIL naming it. Never raises (except ``KeyboardInterrupt``).
    """
    where = f"on case '{case}' " if case else ""
    if not callable(fn):
        return None, CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}")
    kwargs = dict(kwargs or {})
    named = dict(zip(arg_names or (), args))
    named.update(kwargs)
    watched = _snapshot({k: named[k] for k in frozen if k in named})
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError as exc:
        if _is_stub(exc):
            return None, stub_verdict(name)
        return None, CheckResult(name, FAIL, f"{where}your code raised NotImplementedError: {_short(exc)}")
    except (Exception, SystemExit) as exc:  # the learner's bug, reported without a traceback
        hint = exception_hint(exc)
        return None, CheckResult(name, FAIL, f"{where}your code raised {type(exc).__name__}: "
                                             f"{_short(exc).rstrip('.')}" + (f". Likely cause: {hint}" if hint else ""))
    try:
        changed = changed_arguments(watched, named)
    except Exception:
        changed = []
    if changed:
        args_txt = ", ".join(f"`{c}`" for c in changed)
        return None, CheckResult(name, FAIL, f"{where}your code modified its input {args_txt} in place "
                                             "(+=, -=, *=, a method ending in _, or item assignment): leave the "
                                             "inputs unchanged and build new tensors (x = x * m instead of "
                                             "x *= m, or start from a copy, w = w0.clone())")
    return value, None


def guarded(name: str) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Decorate a checker so that it never raises (its own errors become a FAIL verdict), leaves
    torch's global random state, grad mode and default dtype as it found them, and still lets
    strict mode raise."""

    def deco(check: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(check)
        def wrapper(*args: Any, **kwargs: Any) -> CheckResult:
            quiet = kwargs.get("quiet", False) is True
            grad_mode, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
            try:
                with torch.random.fork_rng(devices=[]):
                    return check(*args, **kwargs)
            except StrictCheckFailure:
                raise
            except Exception as exc:
                return _report(CheckResult(name, FAIL, f"the checker itself hit an error while checking your "
                                                       f"answer ({type(exc).__name__}: {_short(exc)}); the value "
                                                       "you return is probably of an unexpected kind"), quiet)
            finally:
                torch.set_grad_enabled(grad_mode)
                torch.set_default_dtype(dtype)

        return wrapper

    return deco
