"""Comparing a learner's value with the reference's, in words, without ever raising.

:func:`explain_mismatch` is the workhorse of every checker: ``None`` when the value matches,
else one sentence that says how it differs (type, device, shape, dtype, NaN, the first wrong
position, and whether the difference is only floating-point rounding of a lower precision).
:func:`describe` names any value in a few words ("a NumPy array of shape (3,) and dtype int8").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["describe", "explain_mismatch", "as_tensor", "to_float", "fmt_shape", "fmt_pair"]


def fmt_shape(shape: Sequence[int]) -> str:
    """``(2, 3)``, ``(4,)`` or ``()``: a shape written as Python writes a tuple."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def describe(value: Any) -> str:
    """A few words naming ``value``'s type (and shape, dtype, device for arrays and tensors)."""
    try:
        if value is None:
            return "None"
        if isinstance(value, bool):
            return f"the bool {value}"
        if isinstance(value, (int, float)):
            return f"the number {value!r}"
        if isinstance(value, str):
            short = value if len(value) <= 40 else value[:37] + "..."
            return f"the string {short!r}"
        if isinstance(value, torch.Tensor):
            where = "" if value.device.type == "cpu" else f" on device '{value.device}'"
            return f"a tensor of shape {fmt_shape(value.shape)} and dtype {value.dtype}{where}"
        if isinstance(value, np.ndarray):
            return f"a NumPy array of shape {fmt_shape(value.shape)} and dtype {value.dtype}"
        if isinstance(value, np.generic):
            return f"a NumPy scalar of dtype {value.dtype}"
        if isinstance(value, (list, tuple)):
            return f"a {type(value).__name__} of {len(value)} items"
        if isinstance(value, Mapping):
            keys = list(value)[:5]
            return f"a {type(value).__name__} with keys {keys}" + (" ..." if len(value) > 5 else "")
        if isinstance(value, type):
            return f"the class {value.__name__}"
        if callable(value):
            return f"a function ({getattr(value, '__name__', type(value).__name__)}), not its result"
        return f"an object of type {type(value).__name__}"
    except Exception:  # a hostile __len__ or __repr__
        return f"an object of type {type(value).__name__}"


def as_tensor(x: Any) -> torch.Tensor | None:
    """``x`` as a tensor when it is a tensor or a numeric NumPy array (any strides), else ``None``."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        try:  # torch.from_numpy rejects negative strides (a[::-1]) and object arrays
            return torch.from_numpy(np.ascontiguousarray(x))
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


def to_float(value: Any) -> float | None:
    """``value`` as a Python float when it is one real number (a Python or NumPy number, or a
    one-element real tensor or array with data), else ``None``. Never raises."""
    try:
        if isinstance(value, (bool, np.bool_)):
            return None
        if isinstance(value, (int, float, np.integer, np.floating)):
            return float(value)
        t = as_tensor(value)
        if t is None or t.numel() != 1 or t.is_complex() or t.dtype == torch.bool or t.device.type == "meta":
            return None
        return float(t.detach().cpu().reshape(()).item())
    except (OverflowError, ValueError, TypeError, RuntimeError):
        return None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def fmt_pair(expected: float, got: float) -> tuple[str, str]:
    """Two numbers printed with just enough digits to show that they differ."""
    for digits in (6, 9, 12, 17):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            return e, g
    return f"{expected!r}", f"{got!r}"


def _number_mismatch(expected: float, got: Any, atol: float, rtol: float, what: str) -> str | None:
    if isinstance(got, (torch.Tensor, np.ndarray)):
        t = as_tensor(got)
        if t is not None and t.device.type == "meta":
            return f"{what}: expected a number, got a tensor with no data (device 'meta')"
        if t is None or t.numel() != 1 or t.is_complex():
            return f"{what}: expected one number, got {describe(got)}"
    g = to_float(got)
    if g is None:
        return f"{what}: expected a number, got {describe(got)}"
    e = float(expected)
    if math.isnan(g) and not math.isnan(e):
        return f"{what}: expected {e:.6g}, got NaN"
    if math.isnan(g) and math.isnan(e):
        return None
    if g == e or abs(g - e) <= atol + rtol * abs(e):
        return None
    es, gs = fmt_pair(e, g)
    return f"{what}: expected {es}, got {gs}"


def _rounding_note(e_t: torch.Tensor, g_t: torch.Tensor, e_f: torch.Tensor, g_f: torch.Tensor) -> str:
    """Name a lower precision when it explains the difference (a float32 accumulator, say)."""
    finite = torch.isfinite(e_f) & torch.isfinite(g_f)
    if not finite.any():
        return ""
    err = (g_f - e_f).abs()[finite].max().item()
    size = e_f.abs()[finite].max().item()
    small = err <= 1e-5 * max(size, 1e-30) + 1e-12
    if g_t.is_floating_point() and e_t.is_floating_point() and g_t.dtype != e_t.dtype and small:
        return (f" (your result is {g_t.dtype}, the reference {e_t.dtype}: the difference, at most {err:.2g}, "
                f"is {g_t.dtype} rounding; compute in the inputs' dtype, e.g. x.new_zeros(...) or "
                f"dtype=x.dtype instead of torch.zeros(...))")
    if e_t.dtype == torch.float64 and small:
        return (f" (the largest difference, {err:.2g}, is float32 rounding: part of your computation runs in "
                "float32 although the inputs are float64, e.g. a tensor made with torch.zeros(...) or "
                "torch.tensor(...) without dtype=x.dtype; create it with x.new_zeros(...))")
    return ""


def _shape_note(e_shape: tuple[int, ...], g_shape: tuple[int, ...]) -> str:
    if len(e_shape) == len(g_shape) and sorted(e_shape) == sorted(g_shape):
        return " (the same sizes in another order: an axis is transposed or permuted)"
    squeezed_e = tuple(s for s in e_shape if s != 1)
    squeezed_g = tuple(s for s in g_shape if s != 1)
    if squeezed_e == squeezed_g:
        return " (only axes of size 1 differ: a missing or extra unsqueeze/keepdim)"
    return ""


def _tensor_mismatch(e_t: torch.Tensor, got: Any, atol: float, rtol: float, what: str,
                     numpy_ok: bool = False) -> str | None:
    if got is None:
        return (f"{what}: expected a tensor of shape {fmt_shape(e_t.shape)}, got None "
                "(is a `return` missing?)")
    if isinstance(got, np.ndarray) and numpy_ok:
        converted = as_tensor(got)
        if converted is None:
            return f"{what}: expected a numeric array of shape {fmt_shape(e_t.shape)}, got {describe(got)}"
        got = converted
    if isinstance(got, np.ndarray):
        return (f"{what}: expected a torch.Tensor of shape {fmt_shape(e_t.shape)}, got {describe(got)}: "
                "stay in torch (or convert back with torch.from_numpy)")
    if not isinstance(got, torch.Tensor):
        return f"{what}: expected a torch.Tensor of shape {fmt_shape(e_t.shape)}, got {describe(got)}"
    g_t = got
    if g_t.layout != torch.strided:
        try:
            g_t = g_t.to_dense()
        except Exception:
            return f"{what}: expected a dense tensor, got layout {g_t.layout}"
    if g_t.device.type == "meta":
        return f"{what}: your tensor has no data (device 'meta')"
    if g_t.device != e_t.device:
        return (f"{what}: your tensor is on device '{g_t.device}', the inputs on '{e_t.device}': create new "
                "tensors on the inputs' device (x.new_zeros(...) or device=x.device)")
    if tuple(g_t.shape) != tuple(e_t.shape):
        return (f"{what}: expected shape {fmt_shape(e_t.shape)}, got shape {fmt_shape(g_t.shape)}"
                + _shape_note(tuple(e_t.shape), tuple(g_t.shape)))
    if g_t.is_complex() and not e_t.is_complex():
        return f"{what}: expected real values (dtype {e_t.dtype}), got dtype {g_t.dtype}"
    exact = e_t.dtype == torch.bool or not (e_t.is_floating_point() or e_t.is_complex())
    if exact and (g_t.is_floating_point() or g_t.is_complex()):
        return f"{what}: expected integer values (dtype {e_t.dtype}), got dtype {g_t.dtype}"
    e_c, g_c = e_t.detach().cpu(), g_t.detach().cpu()
    if exact:
        diff = g_c.to(torch.int64) != e_c.to(torch.int64) if e_t.dtype != torch.bool else g_c.bool() != e_c
        note = ""
        e_vals, g_vals = e_c, g_c
    else:
        wide = torch.complex128 if e_t.is_complex() else torch.float64
        e_f, g_f = e_c.to(wide), g_c.to(wide)
        bad_nan = torch.isnan(g_f) & ~torch.isnan(e_f)
        if bad_nan.any():
            pos = tuple(torch.nonzero(bad_nan)[0].tolist())
            return f"{what}: contains NaN (first at position {pos}); the reference has a number there"
        diff = ~torch.isclose(g_f, e_f, atol=atol, rtol=rtol, equal_nan=True)
        note = _rounding_note(e_t, g_t, e_f, g_f) if diff.any() and not e_t.is_complex() else ""
        e_vals, g_vals = e_f, g_f
    if not diff.any():
        return None
    pos = tuple(torch.nonzero(diff)[0].tolist())
    n_bad, n_all = int(diff.sum()), diff.numel()
    e_val, g_val = e_vals[pos].item(), g_vals[pos].item()
    if exact:
        es, gs = str(e_val), str(g_val)
    else:
        es, gs = fmt_pair(e_val, g_val)
    where = f"first at position {pos}: " if pos else ""
    return f"{what}: {n_bad} of {n_all} values differ; {where}expected {es}, got {gs}{note}"


def _explain(expected: Any, got: Any, atol: float, rtol: float, what: str) -> str | None:
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{what}: expected a tuple of {len(expected)} items, got {describe(got)}"
        if len(got) != len(expected):
            return f"{what}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            msg = _explain(e, g, atol, rtol, f"{what}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{what}: expected a dict with keys {sorted(expected)}, got {describe(got)}"
        missing = [k for k in expected if k not in got]
        if missing:
            return f"{what}: the keys {missing} are missing"
        for k in expected:
            msg = _explain(expected[k], got[k], atol, rtol, f"{what}[{k!r}]")
            if msg:
                return msg
        return None
    e_t = as_tensor(expected)
    if e_t is not None:
        return _tensor_mismatch(e_t, got, atol, rtol, what, numpy_ok=isinstance(expected, np.ndarray))
    if _is_number(expected):
        return _number_mismatch(float(expected), got, atol, rtol, what)
    try:
        same = got == expected
        same = bool(same) if isinstance(same, (bool, np.bool_)) else False
    except Exception:
        same = False
    return None if same else f"{what}: expected {expected!r}, got {describe(got)}"


def explain_mismatch(expected: Any, got: Any, *, atol: float = 1e-5, rtol: float = 1e-4,
                     what: str = "output") -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying how it differs.

    Handles tensors and arrays (type, device, shape, dtype, NaNs, the first differing position,
    a note when the difference is the rounding of a lower precision), tuples, lists and dicts of
    them (element by element) and plain numbers. Never raises, whatever ``got`` is.
    """
    try:
        return _explain(expected, got, atol, rtol, what)
    except Exception as exc:  # a value no branch foresaw: say so rather than crash
        return f"{what}: could not be compared with the reference ({type(exc).__name__}); got {describe(got)}"
