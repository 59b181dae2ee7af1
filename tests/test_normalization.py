import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.normalization import LayerNorm, RMSNorm, batch_norm, layer_norm, rms_norm

DT = torch.float64


def _grads(fn, *tensors):
    out = fn(*tensors)
    g = torch.randn(out.shape, dtype=DT, generator=torch.Generator().manual_seed(1))
    return out, torch.autograd.grad(out, tensors, g)


def test_layer_norm_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    x = (torch.randn(3, 5, 8, dtype=DT) * 3 + 1).requires_grad_()
    w, b = torch.randn(8, dtype=DT, requires_grad=True), torch.randn(8, dtype=DT, requires_grad=True)
    ours, g_ours = _grads(lambda x, w, b: layer_norm(x, w, b, 1e-5), x, w, b)
    ref, g_ref = _grads(lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5), x, w, b)
    torch.testing.assert_close(ours, ref)
    for a, c in zip(g_ours, g_ref):
        torch.testing.assert_close(a, c)


def test_layer_norm_module_loads_torch_state_and_normalises_each_vector():
    torch.manual_seed(0)
    ref = nn.LayerNorm(6).double()
    nn.init.normal_(ref.weight), nn.init.normal_(ref.bias)
    ours = LayerNorm(6).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 6, dtype=DT) * 5 + 2
    torch.testing.assert_close(ours(x), ref(x))
    plain = layer_norm(x)
    torch.testing.assert_close(plain.mean(-1), torch.zeros(4, dtype=DT), atol=1e-12, rtol=0)
    torch.testing.assert_close(plain.var(-1, unbiased=False), torch.ones(4, dtype=DT), atol=1e-5, rtol=0)


def test_rms_norm_matches_torch_values_and_gradients():
    torch.manual_seed(0)
    x = (torch.randn(2, 7, 16, dtype=DT) * 2 + 0.5).requires_grad_()
    w = torch.randn(16, dtype=DT, requires_grad=True)
    ours, g_ours = _grads(lambda x, w: rms_norm(x, w, 1e-6), x, w)
    ref, g_ref = _grads(lambda x, w: F.rms_norm(x, (16,), w, 1e-6), x, w)
    torch.testing.assert_close(ours, ref)
    for a, c in zip(g_ours, g_ref):
        torch.testing.assert_close(a, c)
    module_ref = nn.RMSNorm(16, eps=1e-6).double()
    nn.init.normal_(module_ref.weight)
    module = RMSNorm(16, eps=1e-6).double()
    module.load_state_dict(module_ref.state_dict())
    torch.testing.assert_close(module(x), module_ref(x))


def test_batch_norm_matches_batchnorm1d_in_training_mode_and_depends_on_the_batch():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5).double()
    nn.init.normal_(bn.weight), nn.init.normal_(bn.bias)
    x = (torch.randn(8, 5, dtype=DT) * 3).requires_grad_()
    ours, g_ours = _grads(lambda x: batch_norm(x, bn.weight, bn.bias, bn.eps), x)
    ref, g_ref = _grads(bn, x)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours[0], g_ref[0])
    other = x.detach().clone()
    other[1:] = torch.randn(7, 5, dtype=DT)  # same first example, different batch-mates
    assert not torch.allclose(batch_norm(other)[0], batch_norm(x.detach())[0])
    torch.testing.assert_close(layer_norm(other)[0], layer_norm(x.detach())[0])  # LayerNorm does not care


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"weight must be .* of shape \(C,\) = \(4,\)"):
        layer_norm(torch.zeros(2, 4), torch.ones(5))
    with pytest.raises(ValueError, match="at least 2 examples"):
        batch_norm(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        RMSNorm(0)
    with pytest.raises(ValueError, match=r"x must be .* of shape \(B, C\)"):
        batch_norm(torch.zeros(2, 3, 4))
