"""Checkers for the lab "Gradient descent" (labs/01_gradient_descent).

Learner functions and their references:

- ``mse_gradient(X, y, w)``: gradient of mean((X w - y)^2) with respect to w, ``(D,)``.
- ``logistic_gradient(X, y, w)``: gradient of the mean binary cross-entropy of sigmoid(X w), ``(D,)``.
- ``gradient_descent(grad_fn, w0, lr, steps)``: w after ``steps`` updates w = w - lr * grad_fn(w);
  ``w0`` must not be modified in place.
- ``adam_step(w, g, m, v, t, lr, beta1, beta2, eps)``: one Adam update returning ``(w, m, v)``.

A failing case is compared with the usual wrong variants (the factor 2 or the 1/N missing, the sign
flipped, no sigmoid, the squared-error gradient through the sigmoid, one update too many, the
gradient taken only at w0, Adam without bias correction or with eps inside the square root...),
so the verdict names the likely bug.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils.checks import Case, CheckResult, check_threshold, run_cases
from utils.checks._validate import function_arg, int_arg, number_arg, same_size, tensor_arg

__all__ = ["ref_mse_gradient", "ref_logistic_gradient", "ref_gradient_descent", "ref_adam_step",
           "check_mse_gradient", "check_logistic_gradient", "check_gradient_descent", "check_adam_step",
           "check_final_loss"]


def _regression_args(X, y, w) -> None:
    tensor_arg("X", X, ndim=2, floating=True, shape="(N, D)")
    tensor_arg("y", y, ndim=1, shape="(N,)")
    tensor_arg("w", w, ndim=1, floating=True, shape="(D,)")
    same_size("y", y, 0, X.shape[0], "X (N rows)")
    same_size("w", w, 0, X.shape[1], "X (D columns)")


def ref_mse_gradient(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Gradient of mean((X w - y)^2): ``X (N, D)``, ``y (N,)``, ``w (D,)`` -> ``(D,)``."""
    _regression_args(X, y, w)
    return 2 * X.T @ (X @ w - y) / len(y)


def ref_logistic_gradient(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean binary cross-entropy of sigmoid(X w): ``(N, D), (N,), (D,)`` -> ``(D,)``."""
    _regression_args(X, y, w)
    return X.T @ (torch.sigmoid(X @ w) - y) / len(y)


def ref_gradient_descent(grad_fn: Callable, w0: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    """``steps`` updates w = w - lr * grad_fn(w) from a copy of ``w0``."""
    function_arg("grad_fn", grad_fn)
    tensor_arg("w0", w0, floating=True)
    number_arg("lr", lr)
    int_arg("steps", steps, minimum=0)
    w = w0.clone()
    for _ in range(steps):
        w = w - lr * grad_fn(w)
    return w


def ref_adam_step(w: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr: float = 1e-3,
                  beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """One Adam update at step ``t`` (from 1): returns ``(w, m, v)``, all of ``w``'s shape."""
    tensor_arg("w", w, floating=True)
    for n, x in (("g", g), ("m", m), ("v", v)):
        tensor_arg(n, x, floating=True)
        if x.shape != w.shape:
            raise ValueError(f"{n} must have w's shape {tuple(w.shape)}, got {tuple(x.shape)}")
    int_arg("t", t, minimum=1)
    number_arg("lr", lr)
    number_arg("beta1", beta1, low=0.0, high=0.999999)
    number_arg("beta2", beta2, low=0.0, high=0.999999)
    number_arg("eps", eps, low=0.0)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return w - lr * m_hat / (v_hat.sqrt() + eps), m, v


def _data(n: int, d: int, seed: int, binary: bool = False):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < 0.5).double() if binary else torch.randn(n, generator=g, dtype=torch.float64)
    return X, y, w


_MSE_MISTAKES = [
    (lambda X, y, w: X.T @ (X @ w - y) / len(y), "the factor 2 is missing: d/dw (x·w - y)² = 2 (x·w - y) x"),
    (lambda X, y, w: 2 * X.T @ (y - X @ w) / len(y),
     "the sign is flipped: the residual is prediction minus target, X @ w - y"),
    (lambda X, y, w: 2 * X.T @ (X @ w - y), "the 1/N is missing: the loss is the MEAN over the N examples, divide "
                                            "by N = len(y)"),
    (lambda X, y, w: X.T @ (X @ w - y), "both the factor 2 and the 1/N are missing: 2 X^T (X w - y) / N"),
    (lambda X, y, w: 2 * X.T @ (X @ w - y) / X.shape[1],
     "divide by the number of examples N = X.shape[0], not by the number of features"),
]

_LOGISTIC_MISTAKES = [
    (lambda X, y, w: X.T @ (X @ w - y) / len(y), "the sigmoid is missing: the prediction is p = torch.sigmoid(X @ w)"),
    (lambda X, y, w: X.T @ (y - torch.sigmoid(X @ w)) / len(y),
     "the sign is flipped: the gradient is X^T (p - y) / N, prediction minus target"),
    (lambda X, y, w: X.T @ (torch.sigmoid(X @ w) - y), "the 1/N is missing: the loss is the MEAN over the examples"),
    (lambda X, y, w: 2 * X.T @ (torch.sigmoid(X @ w) - y) / len(y),
     "there is no factor 2 in the cross-entropy's gradient: X^T (p - y) / N"),
    (lambda X, y, w: X.T @ ((torch.sigmoid(X @ w) - y) * torch.sigmoid(X @ w) * (1 - torch.sigmoid(X @ w))) / len(y),
     "that is the squared error's gradient through the sigmoid; for the cross-entropy the p(1 - p) cancels: "
     "X^T (p - y) / N"),
    (lambda X, y, w: 2 * X.T @ ((torch.sigmoid(X @ w) - y) * torch.sigmoid(X @ w) * (1 - torch.sigmoid(X @ w)))
     / len(y),
     "that is the squared error's gradient through the sigmoid; for the cross-entropy the p(1 - p) cancels: "
     "X^T (p - y) / N"),
]


def check_mse_gradient(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(X (N, D), y (N,), w (D,)) -> (D,)``, the gradient of the mean squared error."""
    cases = [Case("5 examples, 3 features", _data(5, 3, 0)), Case("40 examples, 7 features", _data(40, 7, 1))]
    return run_cases(fn, ref_mse_gradient, cases, name="mse_gradient", atol=1e-9, rtol=1e-7, quiet=quiet,
                     mistakes=_MSE_MISTAKES, what="gradient")


def check_logistic_gradient(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(X (N, D), y (N,) of 0/1, w (D,)) -> (D,)``, the gradient of the mean binary cross-entropy."""
    cases = [Case("6 examples, 2 features", _data(6, 2, 2, True)), Case("50 examples, 5 features", _data(50, 5, 3, True))]
    return run_cases(fn, ref_logistic_gradient, cases, name="logistic_gradient", atol=1e-9, rtol=1e-7, quiet=quiet,
                     mistakes=_LOGISTIC_MISTAKES, what="gradient")


def _gd_variant(*, extra: int = 0, sign: float = -1.0, use_lr: bool = True, frozen_grad: bool = False,
                from_zero: bool = False):
    def run(grad_fn, w0, lr, steps):
        w = torch.zeros_like(w0) if from_zero else w0.clone()
        g0 = grad_fn(w)
        for _ in range(max(steps + extra, 0)):
            g = g0 if frozen_grad else grad_fn(w)
            w = w + sign * (lr if use_lr else 1.0) * g
        return w
    return run


_GD_MISTAKES = [
    (_gd_variant(extra=1), "one update too many: the loop must run exactly `steps` times, for _ in range(steps)"),
    (_gd_variant(extra=-1), "one update too few: the loop must run exactly `steps` times, for _ in range(steps)"),
    (_gd_variant(sign=1.0), "the update goes uphill: subtract the gradient, w = w - lr * grad_fn(w)"),
    (_gd_variant(use_lr=False), "the learning rate is missing: w = w - lr * grad_fn(w)"),
    (_gd_variant(frozen_grad=True), "the gradient is computed once, at w0: call grad_fn(w) inside the loop, at the "
                                    "current w"),
    (_gd_variant(from_zero=True), "the loop starts from zeros, not from w0: start from a copy, w = w0.clone()"),
    (lambda grad_fn, w0, lr, steps: w0.clone(), "w never changes: assign each update back, w = w - lr * grad_fn(w)"),
]


def check_gradient_descent(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(grad_fn, w0, lr, steps) -> w`` (and that ``w0`` is left unchanged)."""
    X, y, _ = _data(30, 4, 4)
    grad = lambda w: ref_mse_gradient(X, y, w)  # noqa: E731
    w0 = torch.zeros(4, dtype=torch.float64)
    start = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    cases = [Case("1 step, lr 0.1", (grad, w0, 0.1, 1)), Case("25 steps, lr 0.05", (grad, w0, 0.05, 25)),
             Case("3 steps from a non-zero w0, lr 0.1", (grad, start, 0.1, 3)),
             Case("0 steps: w0 itself", (grad, start, 0.1, 0))]
    return run_cases(fn, ref_gradient_descent, cases, name="gradient_descent", atol=1e-9, rtol=1e-7, quiet=quiet,
                     mistakes=_GD_MISTAKES, arg_names=("grad_fn", "w0", "lr", "steps"), frozen=("w0",), what="w")


def _adam_variant(*, correct_m: bool = True, correct_v: bool = True, t_shift: int = 0, eps_inside: bool = False,
                  v_linear: bool = False, swap_betas: bool = False, return_hats: bool = False, sign: float = -1.0):
    def step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        m = beta1 * g + (1 - beta1) * m if swap_betas else beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g if v_linear else g * g)
        tt = t + t_shift
        m_hat = m / (1 - beta1 ** tt) if correct_m else m
        v_hat = v / (1 - beta2 ** tt) if correct_v else v
        denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
        w_new = w + sign * lr * m_hat / denom
        return (w_new, m_hat, v_hat) if return_hats else (w_new, m, v)
    return step


_ADAM_MISTAKES = [
    (_adam_variant(correct_m=False, correct_v=False), "the bias correction is missing: divide m by (1 - beta1**t) "
                                                      "and v by (1 - beta2**t) before the update"),
    (_adam_variant(correct_v=False), "only m is bias-corrected: v needs its correction too, v / (1 - beta2**t)"),
    (_adam_variant(correct_m=False), "only v is bias-corrected: m needs its correction too, m / (1 - beta1**t)"),
    (_adam_variant(t_shift=1), "t counts from 1 in the bias correction: use beta1**t, not beta1**(t + 1)"),
    (_adam_variant(t_shift=-1), "t counts from 1 in the bias correction: use beta1**t, not beta1**(t - 1)"),
    (_adam_variant(eps_inside=True), "eps goes outside the square root: sqrt(v_hat) + eps"),
    (_adam_variant(v_linear=True), "v averages the SQUARED gradient: v = beta2 * v + (1 - beta2) * g * g"),
    (_adam_variant(swap_betas=True), "the weights of the moving average are swapped: m = beta1 * m + (1 - beta1) * g"),
    (_adam_variant(return_hats=True), "return the raw moments m and v, not m_hat and v_hat: the next step corrects "
                                      "them again"),
    (_adam_variant(sign=1.0), "w moves uphill: subtract the update, w - lr * m_hat / (sqrt(v_hat) + eps)"),
    (lambda w, g, m, v, *a, **k: (lambda r: (r[0], r[2], r[1]))(ref_adam_step(w, g, m, v, *a, **k)),
     "m and v are swapped in what you return: return (w, m, v) in this order"),
    (lambda w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8: ref_adam_step(w, g, m, v, t, 1e-3, beta1, beta2,
                                                                                      eps),
     "the argument lr is ignored (a number is written in its place): use lr"),
    (lambda w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8: ref_adam_step(w, g, m, v, t, lr, 0.9, 0.999,
                                                                                      eps),
     "the arguments beta1 and beta2 are ignored (numbers are written in their place): use beta1 and beta2"),
    (lambda w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8: ref_adam_step(w, g, m, v, t, lr, beta1, beta2,
                                                                                      1e-8),
     "the argument eps is ignored (a number is written in its place): use eps"),
]


def check_adam_step(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8) -> (w, m, v)``."""
    g = torch.Generator().manual_seed(5)
    r = lambda: torch.randn(4, generator=g, dtype=torch.float64)  # noqa: E731
    zero = torch.zeros(4, dtype=torch.float64)
    cases = [
        Case("first step (t = 1) from m = v = 0: bias correction matters", (r(), r(), zero, zero, 1)),
        Case("step t = 10 with non-zero moments", (r(), r(), r() * 0.1, r().abs() * 0.01, 10)),
        Case("other hyperparameters", (r(), r(), zero, zero, 3), {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6}),
        Case("large eps = 0.5, t = 2", (r(), r(), r() * 0.1, r().abs() * 0.01, 2), {"eps": 0.5}),
    ]
    return run_cases(fn, ref_adam_step, cases, name="adam_step", atol=1e-9, rtol=1e-7, quiet=quiet,
                     mistakes=_ADAM_MISTAKES, what="(w, m, v)")


def check_final_loss(loss: float | None, target: float, *, quiet: bool = False) -> CheckResult:
    """The trained detector's final training loss must be at most ``target``."""
    return check_threshold(loss, target, name="final training loss", higher_is_better=False, quiet=quiet)
