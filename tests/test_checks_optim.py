import torch

from utils.checks import FAIL, PASS, TODO
from utils.checks import optim as co
from utils.optim import Adam


def test_references_pass_and_typical_mistakes_fail():
    assert co.check_mse_gradient(co.ref_mse_gradient).status == PASS
    res = co.check_mse_gradient(lambda X, y, w: X.T @ (X @ w - y) / len(y))  # forgot the factor 2
    assert res.status == FAIL and "values differ" in res.message
    assert co.check_logistic_gradient(co.ref_logistic_gradient).status == PASS
    assert co.check_logistic_gradient(lambda X, y, w: X.T @ (X @ w - y) / len(y)).status == FAIL  # no sigmoid
    assert co.check_gradient_descent(co.ref_gradient_descent).status == PASS
    assert co.check_adam_step(co.ref_adam_step).status == PASS

    def no_bias_correction(w, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        return w - lr * m / (v.sqrt() + eps), m, v

    res = co.check_adam_step(no_bias_correction)
    assert res.status == FAIL and "first step" in res.message

    def stub(*args, **kwargs):
        raise NotImplementedError

    assert co.check_adam_step(stub).status == TODO
    assert co.check_final_loss(0.1, 0.2).status == PASS and co.check_final_loss(0.3, 0.2).status == FAIL


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
