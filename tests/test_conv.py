import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.conv import (DigitsCNN, avg_pool2d, conv2d_loops, conv2d_unfold, conv_output_size, count_parameters,
                        max_pool2d)

CONFIGS = [  # (H, W, C_in, C_out, K, stride, padding, dilation)
    (7, 9, 1, 1, 3, 1, 0, 1), (8, 8, 3, 2, 3, 2, 1, 1), (9, 7, 2, 4, 2, 3, 2, 1), (10, 10, 2, 3, 3, 1, 2, 2),
    (5, 6, 1, 2, 5, 1, 1, 1), (11, 13, 3, 1, 4, 2, 0, 2),
]


@pytest.mark.parametrize("conv", [conv2d_loops, conv2d_unfold])
@pytest.mark.parametrize("H, W, C_in, C_out, K, s, p, d", CONFIGS)
def test_conv2d_matches_torch_values_and_gradients(conv, H, W, C_in, C_out, K, s, p, d):
    torch.manual_seed(0)
    x = torch.randn(2, C_in, H, W, dtype=torch.float64, requires_grad=True)
    w = torch.randn(C_out, C_in, K, K, dtype=torch.float64, requires_grad=True)
    b = torch.randn(C_out, dtype=torch.float64, requires_grad=True)
    ours = conv(x, w, b, stride=s, padding=p, dilation=d)
    ref = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(ours, (x, w, b), g)
    ref_grads = torch.autograd.grad(ref, (x, w, b), g)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r)


def test_output_size_formula_matches_nn_conv2d_for_many_configurations():
    for H, K, s, p, d in itertools.product((5, 8, 11), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2)):
        if d * (K - 1) + 1 > H + 2 * p:
            continue
        out = nn.Conv2d(1, 1, K, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, H, H))
        assert out.shape[-1] == conv_output_size(H, K, s, p, d)


def test_pooling_matches_torch():
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(max_pool2d(x, 2), F.max_pool2d(x, 2))
    torch.testing.assert_close(avg_pool2d(x, 3, 2), F.avg_pool2d(x, 3, 2))


@pytest.mark.parametrize("call, word", [
    (lambda: conv2d_unfold(torch.zeros(1, 8, 8), torch.zeros(1, 1, 3, 3)), "x must be a floating-point tensor of shape"),
    (lambda: conv2d_loops(torch.zeros(1, 2, 8, 8), torch.zeros(4, 3, 3, 3)), r"weight must be .*\[C_in=2 from x\]"),
    (lambda: conv2d_unfold(torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 3, 3), torch.zeros(3)), "bias"),
    (lambda: conv2d_unfold(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 3, 3), stride=0), "stride"),
    (lambda: conv2d_unfold(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 7, 7), padding=1), "larger than the padded"),
    (lambda: max_pool2d(torch.zeros(4, 4), 2), "x must be a floating-point tensor of shape"),
    (lambda: conv_output_size(8, 3, padding=-1), "padding"),
])
def test_bad_input_is_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_digits_cnn_shapes_and_parameter_count():
    model = DigitsCNN()
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    by_hand = (16 * 1 * 9 + 16) + (32 * 16 * 9 + 32) + (128 * 64 + 64) + (64 * 10 + 10)
    assert count_parameters(model) == by_hand == 13706
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model(torch.zeros(5, 64))
    with pytest.raises(ValueError, match="channels"):
        DigitsCNN(channels=(16,))


def test_lab_checkers_pass_reference_and_explain_mistakes():
    from utils.checks import FAIL, PASS, TODO
    from utils.checks.conv import check_cnn_accuracy, check_conv2d, check_max_pool2d

    ref = lambda x, w, b=None, stride=1, padding=0: conv2d_unfold(x, w, b, stride=stride, padding=padding)
    assert check_conv2d(ref, name="ref", ).status == PASS

    def no_padding(x, w, b=None, stride=1, padding=0):
        return conv2d_unfold(x, w, b, stride=stride)

    res = check_conv2d(no_padding)
    assert res.status == FAIL and "padding 1" in res.message and "expected shape" in res.message

    def stub(x, w, b=None, stride=1, padding=0):
        raise NotImplementedError

    assert check_conv2d(stub).status == TODO
    assert check_max_pool2d(lambda x, k, s: max_pool2d(x, k, s)).status == PASS
    assert check_max_pool2d(lambda x, k, s: avg_pool2d(x, k, s)).status == FAIL
    assert check_cnn_accuracy(0.98).status == PASS and check_cnn_accuracy(0.5).status == FAIL
