"""Gradient flow: does a learner's differentiable function pass the same gradients as the reference?

A function can return the right values and still cut the graph (``.detach()``, ``torch.no_grad()``,
``.item()``, ``.data``, a state detached at each time step): training then silently learns less, or
nothing. :func:`explain_gradients` backpropagates one fixed random projection of the outputs
through the learner's function and through the reference, and compares the input gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from utils.checks._compare import explain_mismatch
from utils.checks._core import call_learner

__all__ = ["GradientReport", "explain_gradients", "CUT_HINT"]

CUT_HINT = ("something cuts the graph: a .detach(), .data, .item(), .tolist()/.numpy(), torch.no_grad(), or a new "
            "tensor filled with computed numbers (torch.tensor(...))")


@dataclass
class GradientReport:
    """``message`` is ``None`` when the gradients match; ``grads``/``expected`` map input names to
    the learner's and the reference's gradients (``None`` where no gradient arrived)."""

    message: str | None
    grads: dict[str, torch.Tensor | None] = field(default_factory=dict)
    expected: dict[str, torch.Tensor | None] = field(default_factory=dict)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value, key=str) for x in _flatten(value[k])]
    return [value]


def _projection(outs: Sequence[Any], refs: Sequence[torch.Tensor], seed: int) -> torch.Tensor | None:
    g = torch.Generator().manual_seed(seed)
    total = None
    for o, r in zip(outs, refs):
        if not (isinstance(r, torch.Tensor) and r.is_floating_point()):
            continue
        if not isinstance(o, torch.Tensor) or o.shape != r.shape or not o.is_floating_point():
            continue
        weight = torch.randn(r.shape, generator=g, dtype=torch.float64)
        finite = torch.isfinite(r.detach()).cpu()
        o64 = o.to(torch.float64).cpu().masked_fill(~finite, 0.0)
        term = (o64 * weight.masked_fill(~finite, 0.0)).sum()
        total = term if total is None else total + term
    return total


def explain_gradients(fn: Callable[..., Any], reference: Callable[..., Any], args: Sequence[Any],
                      kwargs: dict[str, Any] | None = None, *, wrt: Sequence[int], arg_names: Sequence[str],
                      name: str = "", select: Callable[[Any], list[Any]] | None = None, atol: float = 1e-7,
                      rtol: float = 1e-5, seed: int = 1234) -> GradientReport:
    """Compare the gradients of ``fn`` and ``reference`` with respect to the arguments at the
    positions ``wrt`` (named by ``arg_names``). ``select`` maps a return value to the list of
    output tensors to differentiate (default: every tensor in it, in order). Never raises."""
    kwargs = dict(kwargs or {})
    select = select or _flatten
    wrt = [i for i in wrt if i < len(args) and isinstance(args[i], torch.Tensor) and args[i].is_floating_point()]
    if not wrt:
        return GradientReport(None)

    def prepare() -> list[Any]:
        out = []
        for i, a in enumerate(args):
            if i in wrt and isinstance(a, torch.Tensor):
                a = a.detach().clone().requires_grad_(True)
            elif isinstance(a, torch.Tensor):
                a = a.detach().clone()
            out.append(a)
        return out

    ref_args, mine = prepare(), prepare()
    names = [arg_names[i] for i in wrt]
    with torch.enable_grad():
        ref_outs = select(reference(*ref_args, **kwargs))
        ref_loss = _projection(ref_outs, ref_outs, seed)
        leaves_ref = [ref_args[i] for i in wrt]
        expected = torch.autograd.grad(ref_loss, leaves_ref, allow_unused=True)
        value, failed = call_learner(name, fn, mine, kwargs)
        if failed is not None:
            return GradientReport(f"with inputs that require gradients, {failed.message}")
        try:
            outs = select(value)
        except Exception:
            outs = []
        loss = _projection(outs, ref_outs, seed)
        if loss is None or not loss.requires_grad:
            return GradientReport(f"the values are right, but no gradient flows back through your function to its "
                                  f"inputs: {CUT_HINT}", {n: None for n in names},
                                  dict(zip(names, expected)))
        try:
            grads = torch.autograd.grad(loss, [mine[i] for i in wrt], allow_unused=True)
        except Exception as exc:  # an in-place edit autograd needed, say
            return GradientReport(f"backpropagating through your function failed ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200] if str(exc) else ''})")
    report = GradientReport(None, dict(zip(names, grads)), dict(zip(names, expected)))
    for n, g, e in zip(names, grads, expected):
        if e is None:
            continue
        if g is None or (not g.any() and e.any()):
            report.message = f"the values are right, but no gradient reaches `{n}`: {CUT_HINT}"
            return report
        msg = explain_mismatch(e, g, atol=atol, rtol=rtol, what=f"the gradient with respect to `{n}`")
        if msg is not None:
            report.message = f"the values are right, but {msg}: part of the computation is cut from the graph " \
                             "(a .detach(), .data, .item() or torch.no_grad() on one term?)"
            return report
    return report
