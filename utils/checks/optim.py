"""Checkers for the lab "Gradient descent" (labs/01_gradient_descent).

Learner functions and their references:

- ``mse_gradient(X, y, w)``: gradient of mean((X w - y)^2) with respect to w, ``(D,)``.
- ``logistic_gradient(X, y, w)``: gradient of the mean binary cross-entropy of sigmoid(X w), ``(D,)``.
- ``gradient_descent(grad_fn, w0, lr, steps)``: w after ``steps`` updates w = w - lr * grad_fn(w).
- ``adam_step(w, g, m, v, t, lr, beta1, beta2, eps)``: one Adam update returning ``(w, m, v)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from utils.checks import Case, CheckResult, check_threshold, run_cases

__all__ = ["ref_mse_gradient", "ref_logistic_gradient", "ref_gradient_descent", "ref_adam_step",
           "check_mse_gradient", "check_logistic_gradient", "check_gradient_descent", "check_adam_step",
           "check_final_loss"]


def ref_mse_gradient(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return 2 * X.T @ (X @ w - y) / len(y)


def ref_logistic_gradient(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return X.T @ (torch.sigmoid(X @ w) - y) / len(y)


def ref_gradient_descent(grad_fn: Callable, w0: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    w = w0.clone()
    for _ in range(steps):
        w = w - lr * grad_fn(w)
    return w


def ref_adam_step(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
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


def check_mse_gradient(fn: Callable) -> CheckResult:
    cases = [Case("5 examples, 3 features", _data(5, 3, 0)), Case("40 examples, 7 features", _data(40, 7, 1))]
    return run_cases(fn, ref_mse_gradient, cases, name="mse_gradient", atol=1e-9, rtol=1e-7)


def check_logistic_gradient(fn: Callable) -> CheckResult:
    cases = [Case("6 examples, 2 features", _data(6, 2, 2, True)), Case("50 examples, 5 features", _data(50, 5, 3, True))]
    return run_cases(fn, ref_logistic_gradient, cases, name="logistic_gradient", atol=1e-9, rtol=1e-7)


def check_gradient_descent(fn: Callable) -> CheckResult:
    X, y, _ = _data(30, 4, 4)
    grad = lambda w: ref_mse_gradient(X, y, w)  # noqa: E731
    w0 = torch.zeros(4, dtype=torch.float64)
    cases = [Case("1 step, lr 0.1", (grad, w0, 0.1, 1)), Case("25 steps, lr 0.05", (grad, w0, 0.05, 25))]
    return run_cases(fn, ref_gradient_descent, cases, name="gradient_descent", atol=1e-9, rtol=1e-7)


def check_adam_step(fn: Callable) -> CheckResult:
    g = torch.Generator().manual_seed(5)
    r = lambda: torch.randn(4, generator=g, dtype=torch.float64)  # noqa: E731
    zero = torch.zeros(4, dtype=torch.float64)
    cases = [
        Case("first step (t = 1) from m = v = 0: bias correction matters", (r(), r(), zero, zero, 1)),
        Case("step t = 10 with non-zero moments", (r(), r(), r() * 0.1, r().abs() * 0.01, 10)),
        Case("other hyperparameters", (r(), r(), zero, zero, 3), {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6}),
    ]
    return run_cases(fn, ref_adam_step, cases, name="adam_step", atol=1e-9, rtol=1e-7)


def check_final_loss(loss: float | None, target: float) -> CheckResult:
    return check_threshold(loss, target, name="final training loss", higher_is_better=False)
