"""Checks declared in the signature: shapes, dtypes and value ranges of the public API of ``utils``.

A public function states what it accepts where the reader looks anyway, in its annotations, and
one decorator turns those annotations into checks at call time::

    from utils._validate import Float, Int, PosInt, Prob, checked

    @checked
    def lm_loss(logits: Float[Tensor, "B T V"], targets: Int[Tensor, "B T"]) -> Tensor: ...

    @checked
    def generate(model: Callable, idx: Int[Tensor, "B T"], max_new_tokens: NonNegInt, *,
                 block_size: PosInt, temperature: PosFloat = 1.0, top_p: Prob | None = None): ...

Bad input then raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong rank, shape,
size or value) naming the parameter as spelled in the signature, what it expects and what came::

    ValueError: lm_loss(): targets must be an int64 tensor of shape (B, T) = (2, 8), got int64 tensor of
    shape (2, 7) [T=8 from logits]

What the annotations mean:

- ``Float[Tensor, "B T C"]``, ``Int[...]`` (int64, as token ids and class labels must be),
  ``Integer[...]`` (any integer dtype), ``Real[...]`` (float or integer), ``Bool[...]``,
  ``Shaped[...]`` (any dtype): a ``torch.Tensor`` of that dtype and shape. A shape is a list of
  dimension names, literal sizes (``"N 64"``), ``_`` (any size), ``...`` (any number of leading
  dimensions; ``"N ..."``: of trailing ones) and ``*B`` (leading dimensions that must broadcast
  across the call). A name means the same size everywhere in one call (``q: "*B T hs"``,
  ``k: "*B S hs"``) and every named size must be at least 1 (no empty batches). Float tensors of
  one call share one dtype (``@checked(mixed_dtypes=True)`` where the function converts), and a
  module's ``forward`` wants the dtype of its parameters.
- ``PosInt``, ``NonNegInt``, ``PosFloat``, ``NonNegFloat``, ``Prob`` ([0, 1]), ``Dropout``
  ([0, 1)), ``Seed``; ``IntIn(lo, hi)``, ``FloatIn(lo, hi)`` and ``OneOf("a", "b")`` for others;
  ``Device`` (a ``torch.device`` or a string torch can parse), ``Texts`` (a non-empty list of
  str), ``Labels`` (a non-empty list of int labels >= 0, or a 1-D int64 tensor), ``Duck("step")``
  (any object with these methods).
- Plain annotations are checked too: ``bool`` wants ``True``/``False`` (not ``"no"``), ``int``
  an int (not a bool), ``float`` a real number (``Finite`` also rules out NaN and infinity),
  ``str``, ``list[str]``, ``X | None``, classes such as ``nn.Module``.

Relations the annotations cannot state (``T <= block_size``, token ids below the vocabulary
size) stay one line in the body: :func:`check` or :func:`check_ids`. :func:`validation` switches
every check off (for the overhead benchmark only).
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import inspect
import math
import numbers
import sys
import types
import typing
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "checked", "check", "check_ids", "validation", "spec_of", "TensorSpec", "Range", "Choice",
    "Float", "Int", "Integer", "Real", "Bool", "Shaped",
    "PosInt", "NonNegInt", "PosFloat", "NonNegFloat", "Prob", "Dropout", "Seed", "Finite",
    "IntIn", "FloatIn", "OneOf", "Device", "Duck", "Texts", "Labels", "Tensor",
]

_ENABLED = True


@contextmanager
def validation(enabled: bool):
    """``with validation(False): ...`` runs without any declared check (benchmarks only)."""
    global _ENABLED
    previous, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = previous


def _describe(value: object) -> str:
    """A short description of what came: type, and dtype/shape for tensors and arrays."""
    if isinstance(value, Tensor):
        return f"{str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"numpy array of shape {value.shape}"
    if isinstance(value, (bool, int, float, str, type(None), torch.dtype, torch.device)) or \
            isinstance(value, (np.integer, np.floating)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return type(value).__name__


class _Fail(Exception):
    """Raised by a spec with (exception class, expected text); turned into the user's error."""

    def __init__(self, kind: type[Exception], expected: str, detail: str = "", sub: str = "",
                 got: object = None) -> None:
        super().__init__(expected)
        self.kind, self.expected, self.detail, self.sub, self.got = kind, expected, detail, sub, got


# ------------------------------------------------------------------------------------ scalar specs

@dataclass(frozen=True)
class Range:
    """A real number (``integer=True``: an int, not a bool) in an interval; open ends with ``*_open``."""

    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False
    text: str = ""

    def describe(self) -> str:
        if self.text:
            return self.text
        what = "an int" if self.integer else "a finite number"
        if self.lo is None and self.hi is None:
            return what
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{what} in {left}{lo}, {hi}{right}"

    def check(self, value: object, ctx: dict) -> None:
        if isinstance(value, (bool, np.bool_)):
            raise _Fail(TypeError, self.describe())
        if self.integer:
            if not isinstance(value, (int, np.integer)):
                raise _Fail(TypeError, self.describe())
        elif not isinstance(value, numbers.Real):
            raise _Fail(TypeError, self.describe())
        elif not math.isfinite(value):
            raise _Fail(ValueError, self.describe())
        lo, hi = self.lo, self.hi
        if (lo is not None and (value <= lo if self.lo_open else value < lo)) or \
                (hi is not None and (value >= hi if self.hi_open else value > hi)):
            raise _Fail(ValueError, self.describe())


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of option strings (or other hashable values)."""

    options: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def check(self, value: object, ctx: dict) -> None:
        try:
            ok = value in self.options and not isinstance(value, bool)
        except TypeError:
            ok = False
        if not ok:
            kind = ValueError if isinstance(value, type(self.options[0])) else TypeError
            raise _Fail(kind, self.describe())


def IntIn(lo: int | None = None, hi: int | None = None, text: str = ""):  # noqa: N802 (reads as a type)
    """``Annotated[int, ...]``: an int in ``[lo, hi]`` (either end may be ``None``)."""
    return typing.Annotated[int, Range(lo, hi, integer=True, text=text)]


def FloatIn(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
            text: str = ""):  # noqa: N802
    """``Annotated[float, ...]``: a finite number in the interval from ``lo`` to ``hi``."""
    return typing.Annotated[float, Range(lo, hi, lo_open=lo_open, hi_open=hi_open, text=text)]


def OneOf(*options):  # noqa: N802
    """``Annotated[str, ...]``: one of the given option strings."""
    return typing.Annotated[type(options[0]), Choice(tuple(options))]


PosInt = IntIn(1, text="a positive int")
NonNegInt = IntIn(0, text="a non-negative int")
Seed = IntIn(0, 2**63 - 1, text="a non-negative int seed")
Finite = FloatIn(text="a finite number")
PosFloat = FloatIn(0.0, lo_open=True, text="a positive finite number")
NonNegFloat = FloatIn(0.0, text="a non-negative finite number")
Prob = FloatIn(0.0, 1.0, text="a probability in [0, 1]")
Dropout = FloatIn(0.0, 1.0, hi_open=True, text="a dropout probability in [0, 1)")


# ------------------------------------------------------------------------------------ tensor specs

_KINDS = {
    "float": ("a floating-point", lambda d: d.is_floating_point),
    "long": ("an int64", lambda d: d == torch.int64),
    "integer": ("an integer", lambda d: not d.is_floating_point and not d.is_complex and d != torch.bool),
    "real": ("a real (float or integer)", lambda d: not d.is_complex and d != torch.bool),
    "bool": ("a bool", lambda d: d == torch.bool),
    "any": ("a", lambda d: True),
}


class TensorSpec:
    """A tensor of a dtype kind and a shape such as ``"B T C"`` (see the module docstring)."""

    def __init__(self, kind: str, shape: str) -> None:
        self.kind, self.shape = kind, shape
        self.dims = shape.split()
        self.ellipsis = bool(self.dims) and (self.dims[0] == "..." or self.dims[0].startswith("*"))
        self.batch = self.dims[0][1:] if self.ellipsis and self.dims[0] != "..." else None
        self.fixed = self.dims[1:] if self.ellipsis else self.dims
        self.trailing = not self.ellipsis and len(self.dims) > 1 and self.dims[-1] == "..."  # "N ...": N leads
        if self.trailing:
            self.fixed = self.dims[:-1]
        if any(d == "..." or d.startswith("*") for d in self.fixed):
            raise ValueError(f"'...' or '*name' may only lead or end a shape, got {shape!r}")
        self.article, self._dtype_ok = _KINDS[kind]

    def __repr__(self) -> str:
        return f"TensorSpec({self.kind!r}, {self.shape!r})"

    def describe(self, ctx: dict | None = None) -> str:
        if self.dims == ["..."]:
            return f"{self.article} tensor"
        shape = "(" + ", ".join(self.dims) + ("," if len(self.dims) == 1 else "") + ")"
        if ctx and any(d in ctx for d in self.dims):
            known = []
            for d in self.dims:
                if d in ctx:
                    size = ctx[d][0]
                    known += [str(s) for s in size] if isinstance(size, tuple) else [str(size)]
                else:
                    known.append(d)
            shape += " = (" + ", ".join(known) + ("," if len(known) == 1 else "") + ")"
        return f"{self.article} tensor of shape {shape}"

    def check(self, value: object, ctx: dict) -> None:
        if not isinstance(value, Tensor):
            raise _Fail(TypeError, self.describe())
        dtype = value.dtype
        if not self._dtype_ok(dtype):
            raise _Fail(TypeError, self.describe())
        if self.kind == "float" and "<mixed>" not in ctx:
            bound = ctx.get("<float dtype>")
            if bound is None:
                ctx["<float dtype>"] = (dtype, ctx["<param>"])
            elif bound[0] != dtype:
                raise _Fail(TypeError, f"{self.describe()} of dtype {str(bound[0]).replace('torch.', '')} "
                                       f"(as {bound[1]})")
        shape = value.shape
        n = len(self.fixed)
        if (len(shape) < n) if (self.ellipsis or self.trailing) else (len(shape) != n):
            raise _Fail(ValueError, self.describe(ctx))
        offset = 0 if self.trailing else len(shape) - n
        if self.batch is not None:
            lead, known = tuple(shape[:offset]), ctx.get("*" + self.batch)
            if known is None:
                ctx["*" + self.batch] = (lead, ctx["<param>"])
            else:
                try:
                    torch.broadcast_shapes(known[0], lead)
                except RuntimeError:
                    raise _Fail(ValueError, self.describe(ctx),
                                f"leading dims {lead} do not broadcast with {known[0]} of {known[1]}") from None
        for i, d in enumerate(self.fixed):
            size = shape[offset + i]
            if d == "_":
                continue
            if d[0].isdigit():
                if size != int(d):
                    raise _Fail(ValueError, self.describe(ctx))
                continue
            if size < 1:
                raise _Fail(ValueError, self.describe(ctx), f"{d} must be at least 1")
            known = ctx.get(d)
            if known is None:
                ctx[d] = (size, ctx["<param>"])
            elif known[0] != size:
                raise _Fail(ValueError, self.describe(ctx), f"{d}={known[0]} from {known[1]}")


class _TensorAlias:
    """``Float[Tensor, "B T C"]`` -> ``Annotated[Tensor, TensorSpec("float", "B T C")]``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __getitem__(self, item):
        cls, shape = item
        return typing.Annotated[cls, TensorSpec(self.kind, shape)]


Float, Int, Integer, Real, Bool, Shaped = (_TensorAlias(k) for k in ("float", "long", "integer", "real", "bool", "any"))


class _DeviceSpec:
    """A ``torch.device`` or a string torch can parse as one (``"cpu"``, ``"cuda:0"``)."""

    def describe(self) -> str:
        return "a torch.device or a device string such as 'cpu' or 'cuda'"

    def check(self, value: object, ctx: dict) -> None:
        if isinstance(value, torch.device):
            return
        if not isinstance(value, str):
            raise _Fail(TypeError, self.describe())
        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            raise _Fail(ValueError, self.describe()) from None


Device = typing.Annotated[typing.Union[torch.device, str], _DeviceSpec()]


class _Duck:
    """Any object with the given methods (an optimizer, a scheduler, a progress bar)."""

    def __init__(self, methods: tuple[str, ...]) -> None:
        self.methods = methods

    def describe(self) -> str:
        return "an object with method(s) " + ", ".join(f"{m}()" for m in self.methods)

    def check(self, value: object, ctx: dict) -> None:
        if not all(callable(getattr(value, m, None)) for m in self.methods):
            raise _Fail(TypeError, self.describe())


def Duck(*methods: str):  # noqa: N802
    """``Annotated[object, ...]``: any object that has these methods, e.g. ``Duck("zero_grad", "step")``."""
    return typing.Annotated[object, _Duck(methods)]


class _Items:
    """A non-empty list (or tuple) whose every item passes ``item``: texts, labels."""

    def __init__(self, item: object, text: str, tensor: TensorSpec | None = None) -> None:
        self.item, self.text, self.tensor = spec_of(item), text, tensor

    def describe(self) -> str:
        return self.text

    def check(self, value: object, ctx: dict) -> None:
        if self.tensor is not None and isinstance(value, Tensor):
            try:
                self.tensor.check(value, ctx)
            except _Fail as err:
                raise _Fail(err.kind, self.text, err.detail) from None
            if value.numel() and bool((value < 0).any()):
                raise _Fail(ValueError, self.text, f"min {int(value.min())}")
            return
        if isinstance(value, (str, bytes)) or not isinstance(value, (cabc.Sequence, np.ndarray)):
            raise _Fail(TypeError, self.text)
        if len(value) == 0:
            raise _Fail(ValueError, self.text, "it is empty")
        for i, v in enumerate(value):
            try:
                self.item.check(v, ctx)
            except _Fail as err:
                raise _Fail(err.kind, self.text, f"item {i} is {_describe(v)}") from None


class _StrItem:
    def describe(self) -> str:
        return "a str"

    def check(self, value: object, ctx: dict) -> None:
        if not isinstance(value, str):
            raise _Fail(TypeError, "a str")


# ------------------------------------------------------------------------------------ plain annotations

class _Plain:
    """Checks a plain annotation: classes, ``X | None``, ``list[T]``, ``tuple[...]``, ``dict[K, V]``."""

    def __init__(self, hint: object) -> None:
        self.hint = hint
        self.text = _hint_text(hint)
        origin = typing.get_origin(hint)
        self.union = [spec_of(a) for a in typing.get_args(hint)] if origin in (typing.Union, types.UnionType) else None

    def describe(self) -> str:
        return self.text

    def check(self, value: object, ctx: dict) -> None:
        if self.union is not None:  # the first branch that accepts wins; else the most telling failure
            failures = []
            for spec in self.union:
                trial = dict(ctx)
                try:
                    spec.check(value, trial)
                except _Fail as err:
                    failures.append(err)
                    continue
                ctx.update(trial)
                return
            worst = next((f for f in failures if f.kind is ValueError and f.detail), None) or \
                next((f for f in failures if f.kind is ValueError), None)
            raise _Fail(ValueError if worst else TypeError, self.text, worst.detail if worst else "")
        if not _matches(self.hint, value, ctx):
            raise _Fail(TypeError, self.text)


class _Fixed:
    """``tuple[A, B]``: a tuple (or list) of that length whose items pass their own specs."""

    def __init__(self, items: tuple) -> None:
        self.items = [spec_of(a) for a in items]
        self.text = "a pair" if len(items) == 2 else f"a tuple of {len(items)}"
        self.text += " (" + ", ".join(s.describe() for s in self.items) + ")"

    def describe(self) -> str:
        return self.text

    def check(self, value: object, ctx: dict) -> None:
        if not isinstance(value, (tuple, list)):
            raise _Fail(TypeError, self.text)
        if len(value) != len(self.items):
            raise _Fail(ValueError, self.text, f"it has {len(value)} items")
        for i, (spec, v) in enumerate(zip(self.items, value)):
            try:
                spec.check(v, ctx)
            except _Fail as err:
                raise _Fail(err.kind, err.expected, err.detail, f"[{i}]", v) from None


def _hint_text(hint: object) -> str:
    if hint is type(None) or hint is None:
        return "None"
    if hint is bool:
        return "a bool (True or False)"
    if hint is int:
        return "an int"
    if hint is float:
        return "a number"
    if hint is str:
        return "a str"
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return spec_of(hint).describe()
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_hint_text(a) for a in typing.get_args(hint))
    if origin is not None:
        args = typing.get_args(hint)
        name = getattr(origin, "__name__", str(origin)).lower()
        if origin is cabc.Callable:
            return "a callable"
        inner = [_hint_text(a).removeprefix("a ").removeprefix("an ") for a in args if a is not Ellipsis]
        if issubclass(origin, cabc.Mapping) and len(inner) == 2:
            return f"a {name} from {inner[0]} to {inner[1]}"
        return f"a {name}" + (f" of {', '.join(inner)}" if inner else "")
    if isinstance(hint, type):
        mod = hint.__module__
        ours = mod in ("builtins", "utils") or mod.startswith("utils.")
        name = hint.__qualname__ if ours else f"{mod}.{hint.__qualname__}"
        name = name.replace("torch.nn.modules.module.", "nn.").replace("torch.", "torch.")
        return f"a {name}"
    return str(hint)


def _matches(hint: object, value: object, ctx: dict) -> bool:
    if hint is typing.Any or hint is object:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        try:
            spec_of(hint).check(value, ctx)
        except _Fail:
            return False
        return True
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(hint):
            trial = dict(ctx)  # a branch that fails must not leave its dimension sizes behind
            if _matches(a, value, trial):
                ctx.update(trial)
                return True
        return False
    if origin is None:
        if isinstance(hint, type):
            if isinstance(value, (str, bytes)) and hint in (cabc.Iterable, cabc.Sequence, cabc.Collection):
                return False  # a str iterates over characters, never what a data parameter means
            return isinstance(value, hint)
        return True  # a TypeVar or a string we could not resolve: not checked
    args = typing.get_args(hint)
    if origin is cabc.Callable:
        return callable(value)
    if origin is typing.Literal:
        return value in args
    if not isinstance(value, origin):
        return False
    if isinstance(value, str) and origin is not str:
        return False  # a str is a Sequence of str, but never what a list parameter means
    if not args:
        return True
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(args[0], v, ctx) for v in value)
        return len(value) == len(args) and all(_matches(a, v, ctx) for a, v in zip(args, value))
    if issubclass(origin, cabc.Mapping):
        return all(_matches(args[0], k, ctx) and _matches(args[1], v, ctx) for k, v in value.items())
    if issubclass(origin, (cabc.Sequence, cabc.Set)):
        return all(_matches(args[0], v, ctx) for v in value)
    return True  # an Iterable or Iterator: not consumed to check its items


class _Optional:
    """``spec | None``: None, or what ``spec`` accepts (keeping its error kind and detail)."""

    def __init__(self, spec) -> None:
        self.spec = spec

    def describe(self) -> str:
        return f"None or {self.spec.describe()}"

    def check(self, value: object, ctx: dict) -> None:
        if value is not None:
            try:
                self.spec.check(value, ctx)
            except _Fail as err:
                raise _Fail(err.kind, f"None or {err.expected}", err.detail, err.sub, err.got) from None


class _Described:
    """``Annotated[hint, "what it is, in words"]``: the check of ``hint``, the words in the message."""

    def __init__(self, spec, text: str) -> None:
        self.spec, self.text = spec, text

    def describe(self) -> str:
        return self.text

    def check(self, value: object, ctx: dict) -> None:
        try:
            self.spec.check(value, ctx)
        except _Fail as err:
            raise _Fail(err.kind, self.text, err.detail, err.sub, err.got) from None


def spec_of(hint: object):
    """The checker of one annotation (what :func:`checked` runs for that parameter)."""
    if typing.get_origin(hint) is typing.Annotated:
        meta = hint.__metadata__
        if isinstance(meta[-1], str):  # Annotated[Float[Tensor, "B T"], "in words"] flattens to one Annotated
            inner = typing.Annotated[(hint.__origin__, *meta[:-1])] if len(meta) > 1 else hint.__origin__
            return _Described(spec_of(inner), meta[-1])
        if hasattr(meta[0], "check"):
            return meta[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return _Optional(spec_of(args[0]))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args and Ellipsis not in args:
            return _Fixed(args)
    return _Plain(hint)


# ------------------------------------------------------------------------------------ the decorator

def _resolve(fn, names: list[str]) -> dict[str, object]:
    """The annotations of ``fn``'s parameters, evaluated in its module (``from __future__ import
    annotations`` leaves them as strings)."""
    module = sys.modules.get(fn.__module__)
    env = dict(vars(module)) if module else {}
    env.update(getattr(fn, "__globals__", {}))
    raw = getattr(fn, "__annotations__", {})
    hints = {}
    for name in names:
        if name not in raw:
            continue
        ann = raw[name]
        hints[name] = eval(ann, env) if isinstance(ann, str) else ann  # noqa: S307 (our own source)
    return hints


class _Checker:
    """The compiled checks of one callable: parameter names in order and their specs."""

    def __init__(self, fn, qualname: str, hints: dict[str, object], order: list[str], var_pos: str | None,
                 self_dims: dict[str, str], module_dtype: bool, mixed_dtypes: bool = False) -> None:
        self.qualname = qualname
        self.mixed_dtypes = mixed_dtypes
        self.order = order
        self.specs = {name: spec_of(h) for name, h in hints.items()}
        self.var_pos = var_pos
        self.self_dims = self_dims
        self.module_dtype = module_dtype

    def fail(self, name: str, value: object, err: _Fail, ctx: dict) -> Exception:
        bound = {k: v for k, v in ctx.items() if not k.startswith("<") and v[1] != name}
        extra = f" [{err.detail}]" if err.detail else ""
        if not extra and bound and isinstance(self.specs.get(name), TensorSpec):
            extra = " [" + ", ".join(f"{k}={v[0]} from {v[1]}" for k, v in bound.items()) + "]"
        if err.sub:
            name, value = name + err.sub, err.got
        return err.kind(f"{self.qualname}(): {name} must be {err.expected}, got {_describe(value)}{extra}")

    def run(self, args: tuple, kwargs: dict) -> None:
        ctx: dict = {"<mixed>": True} if self.mixed_dtypes else {}
        order, specs = self.order, self.specs
        if self.self_dims or self.module_dtype:
            self._bind_self(args[0], ctx)
        n = len(order)
        for i, value in enumerate(args):
            if i < n:
                name = order[i]
            elif self.var_pos is not None:
                name = self.var_pos
            else:
                break  # too many arguments: Python's own TypeError follows
            spec = specs.get(name)
            if spec is not None:
                ctx["<param>"] = name if i < n else f"{name}[{i - n}]"
                try:
                    spec.check(value, ctx)
                except _Fail as err:
                    raise self.fail(ctx["<param>"], value, err, ctx) from None
        for name, value in kwargs.items():
            spec = specs.get(name)
            if spec is not None:
                ctx["<param>"] = name
                try:
                    spec.check(value, ctx)
                except _Fail as err:
                    raise self.fail(name, value, err, ctx) from None

    def _bind_self(self, obj, ctx: dict) -> None:
        for dim, attr in self.self_dims.items():
            value = obj
            for part in attr.split("."):
                value = getattr(value, part)
            ctx[dim] = (value, f"self.{attr}")
        if self.module_dtype:
            p = next((p for p in obj.parameters() if p.is_floating_point()), None)
            if p is not None:
                ctx["<float dtype>"] = (p.dtype, "the module's parameters")


def checked(fn=None, *, dims: dict[str, str] | None = None, mixed_dtypes: bool = False):
    """Check every annotated parameter of ``fn`` at each call (see the module docstring).

    On a class: checks the arguments of ``__init__`` (for a dataclass, its fields' annotations).
    On a method, ``dims={"C": "d_model"}`` fixes a dimension name to an attribute of ``self``;
    on ``forward`` of an ``nn.Module``, float tensors must have the dtype of its parameters.
    ``mixed_dtypes=True``: float tensors of one call need not share a dtype (the function converts).
    """
    if fn is None:
        return lambda f: checked(f, dims=dims, mixed_dtypes=mixed_dtypes)
    if isinstance(fn, type):
        return _checked_class(fn)
    sig = inspect.signature(fn)
    order, var_pos = [], None
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            order.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            var_pos = p.name
    names = list(sig.parameters)
    qualname = fn.__qualname__.replace(".__init__", "")
    is_forward = fn.__name__ == "forward"
    state: dict = {}

    def compile_() -> _Checker:
        hints = _resolve(fn, names)
        checker = _Checker(fn, qualname, hints, order, var_pos, dims or {}, is_forward and not mixed_dtypes,
                           mixed_dtypes)
        state["checker"] = checker
        return checker

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _ENABLED:
            (state.get("checker") or compile_()).run(args, kwargs)
        return fn(*args, **kwargs)

    wrapper.__checked__ = True
    wrapper.__checker__ = lambda: state.get("checker") or compile_()
    return wrapper


def _checked_class(cls: type) -> type:
    init = cls.__init__
    if is_dataclass(cls):
        module = sys.modules.get(cls.__module__)
        env = dict(vars(module)) if module else {}
        hints = {}
        for f in fields(cls):
            if f.init:
                hints[f.name] = eval(f.type, env) if isinstance(f.type, str) else f.type  # noqa: S307
        order = [f.name for f in fields(cls) if f.init]
        state: dict = {}

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):  # noqa: N807
            if _ENABLED:
                checker = state.get("checker")
                if checker is None:
                    checker = state["checker"] = _Checker(init, cls.__qualname__, hints, order, None, {}, False)
                checker.run(args, kwargs)
            init(self, *args, **kwargs)

        __init__.__checker__ = lambda: state.get("checker") or _Checker(init, cls.__qualname__, hints, order,
                                                                        None, {}, False)
        cls.__init__ = __init__
    else:
        wrapped = checked(init)
        wrapped.__qualname__ = init.__qualname__
        cls.__init__ = wrapped
        __init__ = wrapped
    cls.__checked__ = True
    return cls


def check(condition: bool, name: str, expected: str, got: object) -> None:
    """One relation that annotations cannot state: ``ValueError("<name> must be <expected>, got <got>")``."""
    if _ENABLED and not condition:
        raise ValueError(f"{name} must be {expected}, got {got}")


def check_ids(name: str, ids: Tensor, upper: int) -> None:
    """Token ids or class labels must lie in ``[0, upper)`` (else embedding and cross-entropy fail
    deep inside torch with an ``IndexError`` or a device-side assert)."""
    if _ENABLED and ids.numel() and bool(((ids < 0) | (ids >= upper)).any()):
        raise ValueError(f"{name} must hold ids in [0, {upper}), got values in "
                         f"[{int(ids.min())}, {int(ids.max())}]")


Texts = typing.Annotated[typing.Sequence[str], _Items(typing.Annotated[str, _StrItem()], "a non-empty list of str")]
Labels = typing.Annotated[typing.Sequence[int],
                          _Items(NonNegInt, "a non-empty list of int class labels >= 0 (or a 1-D int64 tensor)",
                                 TensorSpec("long", "N"))]
