import math

import pytest
import torch
from torch import nn

from utils.depth import (ResidualBlock, deep_mlp, init_linear_, predicted_rms_factor, saved_activations,
                         signal_profile)


def test_init_schemes_give_the_variances_of_the_formulas():
    torch.manual_seed(0)
    n = 512
    for scheme, var in (("xavier", 2 / (n + n)), ("he", 2 / n), ("default", 1 / (3 * n))):
        layer = init_linear_(nn.Linear(n, n), scheme)
        assert layer.weight.var().item() == pytest.approx(var, rel=0.02)
        if scheme != "default":
            assert layer.bias.abs().max().item() == 0.0
    with pytest.raises(ValueError, match="scheme must be one of"):
        init_linear_(nn.Linear(2, 2), "lecun")
    with pytest.raises(TypeError, match="nn.Linear"):
        init_linear_(nn.Conv2d(1, 1, 3), "he")


def test_signal_profile_follows_the_variance_argument():
    for scheme in ("default", "xavier", "he"):
        prof = signal_profile(scheme, depth=12, width=256, batch_size=256)
        measured = (prof.forward_rms[-1] / prof.forward_rms[0]) ** (1 / 11)
        assert measured == pytest.approx(predicted_rms_factor(scheme), rel=0.1), scheme
        back = (prof.backward_rms[0] / prof.backward_rms[-1]) ** (1 / 11)
        assert back == pytest.approx(predicted_rms_factor(scheme), rel=0.1), scheme
    assert predicted_rms_factor("he") == 1.0
    assert predicted_rms_factor("default") == pytest.approx(1 / math.sqrt(6))


def test_deep_mlp_shapes_parameters_and_residual_flag():
    torch.manual_seed(0)
    res, plain = deep_mlp(3, residual=True), deep_mlp(3, residual=False)
    assert sum(p.numel() for p in res.parameters()) == sum(p.numel() for p in plain.parameters())
    assert res(torch.randn(5, 64)).shape == (5, 10)
    block = ResidualBlock(8)
    nn.init.zeros_(block.linear2.weight), nn.init.zeros_(block.linear2.bias)
    x = torch.randn(3, 8)
    torch.testing.assert_close(block(x), x)  # a zero branch is the identity
    with pytest.raises(ValueError, match="num_blocks"):
        deep_mlp(-1)


def test_saved_activations_counts_each_stored_tensor_once():
    torch.manual_seed(0)
    B, C, L = 16, 32, 5
    model = nn.Sequential(*[m for _ in range(L) for m in (nn.Linear(C, C), nn.ReLU())])
    x = torch.randn(B, C)
    saved = saved_activations(lambda: model(x), exclude=model)
    assert saved.count == L + 1  # the input and every ReLU output (also the next layer's input)
    assert saved.bytes == (L + 1) * B * C * 4
    with_weights = saved_activations(lambda: model(x))
    assert with_weights.bytes > saved.bytes  # the weights are saved too, unless excluded


def test_signal_profile_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    signal_profile("he", depth=2, width=8, batch_size=4)
    torch.testing.assert_close(torch.rand(3), expected)
