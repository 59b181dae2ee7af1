"""Lab 1 (gradient descent): a table of wrong answers, each with its verdict and the phrase that
names the mistake, and correct alternatives that must pass."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from utils.checks import FAIL, PASS, TODO
from utils.checks import optim as co
from utils.optim import Adam


def _stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------------------------ mse_gradient
def _mse_float32_loop(X, y, w):
    out = torch.zeros(X.shape[1])  # float32 accumulator
    r = X @ w - y
    for i in range(len(y)):
        out += (2 * X[i] * r[i] / len(y)).float()
    return out


def _mse_autograd(X, y, w):
    w = w.clone().requires_grad_(True)
    ((X @ w - y) ** 2).mean().backward()
    return w.grad


def _mse_loop(X, y, w):
    g = torch.zeros_like(w)
    for i in range(len(y)):
        g = g + 2 * (X[i] @ w - y[i]) * X[i] / len(y)
    return g


MSE_WRONG = [
    ("no factor 2", lambda X, y, w: X.T @ (X @ w - y) / len(y), "factor 2 is missing"),
    ("sign flipped", lambda X, y, w: 2 * X.T @ (y - X @ w) / len(y), "sign is flipped"),
    ("no 1/N", lambda X, y, w: 2 * X.T @ (X @ w - y), "1/N is missing"),
    ("neither 2 nor 1/N", lambda X, y, w: X.T @ (X @ w - y), "both the factor 2 and the 1/N"),
    ("divided by D", lambda X, y, w: 2 * X.T @ (X @ w - y) / X.shape[1], "number of examples"),
    ("float32 accumulator", _mse_float32_loop, "float32"),
    ("column vector", lambda X, y, w: (2 * X.T @ (X @ w - y) / len(y))[:, None], "axes of size 1"),
    ("X instead of X.T", lambda X, y, w: 2 * X @ (X @ w - y) / len(y), "raised RuntimeError"),
    ("NumPy result", lambda X, y, w: (2 * X.T @ (X @ w - y) / len(y)).numpy(), "NumPy array"),
    ("no return", lambda X, y, w: None, "got None"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", MSE_WRONG, ids=[c[0] for c in MSE_WRONG])
def test_mse_gradient_wrong_answers(label, fn, phrase):
    res = co.check_mse_gradient(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [co.ref_mse_gradient, _mse_autograd, _mse_loop,
                                lambda X, y, w: torch.einsum("nd,n->d", X, X @ w - y) * 2 / X.shape[0],
                                lambda X, y, w: 2 / len(y) * (X.T @ X @ w - X.T @ y)])
def test_mse_gradient_correct_alternatives(fn):
    assert co.check_mse_gradient(fn, quiet=True).status == PASS


# ------------------------------------------------------------------------------- logistic_gradient
def _p(X, w):
    return torch.sigmoid(X @ w)


LOGISTIC_WRONG = [
    ("no sigmoid", lambda X, y, w: X.T @ (X @ w - y) / len(y), "sigmoid is missing"),
    ("sign flipped", lambda X, y, w: X.T @ (y - _p(X, w)) / len(y), "sign is flipped"),
    ("no 1/N", lambda X, y, w: X.T @ (_p(X, w) - y), "1/N is missing"),
    ("factor 2", lambda X, y, w: 2 * X.T @ (_p(X, w) - y) / len(y), "no factor 2"),
    ("squared error through sigmoid", lambda X, y, w: X.T @ ((_p(X, w) - y) * _p(X, w) * (1 - _p(X, w))) / len(y),
     "p(1 - p) cancels"),
    ("2 x squared error through sigmoid",
     lambda X, y, w: 2 * X.T @ ((_p(X, w) - y) * _p(X, w) * (1 - _p(X, w))) / len(y), "p(1 - p) cancels"),
    ("tanh for sigmoid", lambda X, y, w: X.T @ (torch.tanh(X @ w) - y) / len(y), "values differ"),
]


@pytest.mark.parametrize("label,fn,phrase", LOGISTIC_WRONG, ids=[c[0] for c in LOGISTIC_WRONG])
def test_logistic_gradient_wrong_answers(label, fn, phrase):
    res = co.check_logistic_gradient(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def _logistic_autograd(X, y, w):
    w = w.clone().requires_grad_(True)
    F.binary_cross_entropy_with_logits(X @ w, y).backward()
    return w.grad


@pytest.mark.parametrize("fn", [co.ref_logistic_gradient, _logistic_autograd,
                                lambda X, y, w: (X * (_p(X, w) - y)[:, None]).mean(0)])
def test_logistic_gradient_correct_alternatives(fn):
    assert co.check_logistic_gradient(fn, quiet=True).status == PASS


# -------------------------------------------------------------------------------- gradient_descent
def _gd_inplace(grad_fn, w0, lr, steps):
    w = w0
    for _ in range(steps):
        w -= lr * grad_fn(w)
    return w


def _gd_sub_(grad_fn, w0, lr, steps):
    for _ in range(steps):
        w0.sub_(lr * grad_fn(w0))
    return w0.clone()


def _gd_history(grad_fn, w0, lr, steps):
    ws = [w0]
    for _ in range(steps):
        ws.append(ws[-1] - lr * grad_fn(ws[-1]))
    return ws


GD_WRONG = [
    ("one step too many", co._gd_variant(extra=1), "one update too many"),
    ("one step too few", co._gd_variant(extra=-1), "one update too few"),
    ("uphill", co._gd_variant(sign=1.0), "uphill"),
    ("no learning rate", co._gd_variant(use_lr=False), "learning rate is missing"),
    ("gradient only at w0", co._gd_variant(frozen_grad=True), "computed once, at w0"),
    ("starts from zeros", co._gd_variant(from_zero=True), "starts from zeros"),
    ("never updates", lambda grad_fn, w0, lr, steps: w0.clone(), "w never changes"),
    ("w0 modified with -=", _gd_inplace, "modified its input `w0` in place"),
    ("w0 modified with sub_", _gd_sub_, "modified its input `w0` in place"),
    ("returns the history", _gd_history, "expected a torch.Tensor"),
]


@pytest.mark.parametrize("label,fn,phrase", GD_WRONG, ids=[c[0] for c in GD_WRONG])
def test_gradient_descent_wrong_answers(label, fn, phrase):
    res = co.check_gradient_descent(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def _gd_while(grad_fn, w0, lr, steps):
    w, k = w0.detach().clone(), 0
    while k < steps:
        w = w - lr * grad_fn(w)
        k += 1
    return w


@pytest.mark.parametrize("fn", [co.ref_gradient_descent, _gd_while, co._gd_variant()])
def test_gradient_descent_correct_alternatives(fn):
    assert co.check_gradient_descent(fn, quiet=True).status == PASS


def test_gradient_descent_without_copy_but_without_inplace_passes():
    def no_copy(grad_fn, w0, lr, steps):
        w = w0
        for _ in range(steps):
            w = w - lr * grad_fn(w)  # a new tensor each step: w0 is never modified
        return w

    assert co.check_gradient_descent(no_copy, quiet=True).status == PASS


# -------------------------------------------------------------------------------------- adam_step
ADAM_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in co._ADAM_MISTAKES] + [
    ("returns w only", lambda w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8:
     co.ref_adam_step(w, g, m, v, t, lr, beta1, beta2, eps)[0], "expected a tuple of 3 items"),
    ("ignores lr", lambda w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8:
     co.ref_adam_step(w, g, m, v, t, 1e-3, beta1, beta2, eps), "case 'other hyperparameters'"),
]


@pytest.mark.parametrize("label,fn,phrase", ADAM_WRONG, ids=[c[0][:40] for c in ADAM_WRONG])
def test_adam_step_wrong_answers(label, fn, phrase):
    res = co.check_adam_step(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def _adam_inplace(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m.mul_(beta1).add_(g, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    denom = (v / (1 - beta2 ** t)).sqrt().add_(eps)
    w.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))
    return w, m, v


def test_adam_step_reference_and_in_place_moments_pass():
    assert co.check_adam_step(co.ref_adam_step, quiet=True).status == PASS
    assert co.check_adam_step(_adam_inplace, quiet=True).status == PASS
    assert co.check_adam_step(_stub, quiet=True).status == TODO


def test_reference_adam_step_equals_the_adam_class():
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    opt = Adam([w], lr=0.01)
    w_ref, m, v = w.detach().clone(), torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for t in range(1, 6):
        g = torch.randn(3, dtype=torch.float64)
        w.grad = g
        opt.step()
        w_ref, m, v = co.ref_adam_step(w_ref, g, m, v, t, lr=0.01)
    torch.testing.assert_close(w.detach(), w_ref)


def test_final_loss_threshold():
    assert co.check_final_loss(0.1, 0.2, quiet=True).status == PASS
    assert co.check_final_loss(0.3, 0.2, quiet=True).status == FAIL
    assert co.check_final_loss(None, 0.2, quiet=True).status == TODO
    assert "NaN" in co.check_final_loss(float("nan"), 0.2, quiet=True).message
    assert co.check_final_loss(np.float32(0.1), 0.2, quiet=True).status == PASS
