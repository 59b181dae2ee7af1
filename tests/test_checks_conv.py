"""Lab 2 (convolution from scratch): wrong convolutions, poolings and CNNs with their verdicts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, PASS, TODO
from utils.checks import conv as cc


def _stub(*args, **kwargs):
    raise NotImplementedError


def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    B, C_in, H, W = x.shape
    C_out, _, K, _ = weight.shape
    H_out, W_out = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    x_pad = F.pad(x, (padding,) * 4)
    y = x.new_zeros(B, C_out, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[:, :, i * stride:i * stride + K, j * stride:j * stride + K]
            y[:, :, i, j] = (window.unsqueeze(1) * weight.unsqueeze(0)).sum(dim=(2, 3, 4))
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def conv2d_loops_other_order(x, weight, bias=None, stride=1, padding=0):
    """Loops over channels and kernel offsets instead of output positions: also right."""
    C_out, C_in, K, _ = weight.shape
    x_pad = F.pad(x, (padding,) * 4)
    H_out, W_out = (x_pad.shape[2] - K) // stride + 1, (x_pad.shape[3] - K) // stride + 1
    y = torch.zeros(x.shape[0], C_out, H_out, W_out, dtype=x.dtype)
    for o in range(C_out):
        for c in range(C_in):
            for m in range(K):
                for n in range(K):
                    patch = x_pad[:, c, m:m + stride * (H_out - 1) + 1:stride, n:n + stride * (W_out - 1) + 1:stride]
                    y[:, o] += patch * weight[o, c, m, n]
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    B, _, H, W = x.shape
    C_out, _, K, _ = weight.shape
    H_out, W_out = (H + 2 * padding - K) // stride + 1, (W + 2 * padding - K) // stride + 1
    y = weight.reshape(C_out, -1) @ F.unfold(x, K, padding=padding, stride=stride)
    if bias is not None:
        y = y + bias.view(1, -1, 1)
    return y.reshape(B, C_out, H_out, W_out)


def conv2d_einsum(x, weight, bias=None, stride=1, padding=0):
    K = weight.shape[-1]
    win = F.pad(x, (padding,) * 4).unfold(2, K, stride).unfold(3, K, stride)  # (B, C, H_out, W_out, K, K)
    y = torch.einsum("bchwmn,ocmn->bohw", win, weight)
    return y if bias is None else y + bias[:, None, None]


def _float32_accumulator(x, weight, bias=None, stride=1, padding=0):
    y = conv2d_loops(x.float(), weight.float(), None, stride, padding)
    return y.to(x.dtype) if bias is None else y + bias.view(1, -1, 1, 1)


def _bias_required(x, weight, bias, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def _bias_always_added(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, None, stride=stride, padding=padding) + bias.view(1, -1, 1, 1)


def _detached(x, weight, bias=None, stride=1, padding=0):
    return conv2d_im2col(x.detach(), weight, bias, stride, padding)


def _no_grad(x, weight, bias=None, stride=1, padding=0):
    with torch.no_grad():
        return conv2d_im2col(x, weight, bias, stride, padding)


def _weight_detached(x, weight, bias=None, stride=1, padding=0):
    return conv2d_im2col(x, weight.detach(), bias, stride, padding)


def _size_without_plus_one(x, weight, bias=None, stride=1, padding=0):
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    return y[..., :-1, :-1]


def _bias_wrong_axis(x, weight, bias=None, stride=1, padding=0):
    y = F.conv2d(x, weight, None, stride=stride, padding=padding)
    return y if bias is None else y + bias.view(1, 1, 1, -1)


CONV_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in cc._CONV_MISTAKES] + [
    ("float32 accumulator", _float32_accumulator, "float32 rounding"),
    ("bias has no default", _bias_required, "default values included"),
    ("bias added even when None", _bias_always_added, "bias=None"),
    ("input detached", _detached, "no gradient reaches `x`"),
    ("under torch.no_grad", _no_grad, "no gradient flows back"),
    ("weight detached", _weight_detached, "no gradient reaches `weight`"),
    ("size without + 1", _size_without_plus_one, "the + 1 included"),
    ("bias on the wrong axis", _bias_wrong_axis, "raised RuntimeError"),
    ("returns a list", lambda *a, **k: F.conv2d(*a[:3], **k).tolist(), "expected a torch.Tensor"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", CONV_WRONG, ids=[c[0][:40] for c in CONV_WRONG])
def test_conv2d_wrong_answers(label, fn, phrase):
    res = cc.check_conv2d(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [conv2d_loops, conv2d_loops_other_order, conv2d_im2col, conv2d_einsum, cc._reference_conv])
def test_conv2d_correct_alternatives(fn):
    res = cc.check_conv2d(fn, quiet=True)
    assert res.status == PASS and "gradients" in res.message, res.message


def max_pool2d(x, kernel_size, stride):
    return x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride).amax(dim=(-2, -1))


def max_pool2d_loops(x, kernel_size, stride):
    H_out, W_out = (x.shape[2] - kernel_size) // stride + 1, (x.shape[3] - kernel_size) // stride + 1
    rows = []
    for i in range(H_out):
        cols = [x[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size].amax(dim=(-2, -1))
                for j in range(W_out)]
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


POOL_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in cc._POOL_MISTAKES] + [
    ("pools over channels too", lambda x, k, s: max_pool2d(x, k, s).amax(1, keepdim=True), "expected shape"),
    ("detached", lambda x, k, s: max_pool2d(x.detach(), k, s), "no gradient"),
    ("returns NumPy", lambda x, k, s: max_pool2d(x, k, s).numpy(), "NumPy"),
]


@pytest.mark.parametrize("label,fn,phrase", POOL_WRONG, ids=[c[0][:40] for c in POOL_WRONG])
def test_max_pool_wrong_answers(label, fn, phrase):
    res = cc.check_max_pool2d(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [max_pool2d, max_pool2d_loops, lambda x, k, s: F.max_pool2d(x, k, s)])
def test_max_pool_correct_alternatives(fn):
    assert cc.check_max_pool2d(fn, quiet=True).status == PASS


def build_cnn():
    features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(features, nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


class _Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.net, self.spare = build_cnn(), nn.Linear(4, 4)

    def forward(self, x):
        return self.net(x)


class _Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.features, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 64, 10)

    def forward(self, x):
        return self.head(self.features(x).detach().flatten(1))


CNN_WRONG = [
    ("ends in nn.Softmax", lambda: nn.Sequential(build_cnn(), nn.Softmax(dim=-1)), "remove the final nn.Softmax"),
    ("ends in a ReLU", lambda: nn.Sequential(build_cnn(), nn.ReLU()), "ends in a ReLU"),
    ("flatten size by hand, wrong", lambda: nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)),
     "dummy forward pass"),
    ("5 classes", lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 5)), "(16, 10)"),
    ("a layer never used", _Unused, "no gradient reaches ['spare.weight'"),
    ("graph cut", _Detached, "no gradient reaches ['features.weight'"),
    ("returns the class", lambda: nn.Sequential, "must return an nn.Module"),
    ("returns nothing", lambda: None, "must return an nn.Module"),
    ("no parameters", lambda: nn.Flatten(), "no parameters"),
]


@pytest.mark.parametrize("label,fn,phrase", CNN_WRONG, ids=[c[0] for c in CNN_WRONG])
def test_cnn_model_wrong_answers(label, fn, phrase):
    res = cc.check_cnn_model(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_cnn_model_correct_alternatives_and_stub():
    assert cc.check_cnn_model(build_cnn, quiet=True).status == PASS
    log_softmax_end = lambda: nn.Sequential(build_cnn(), nn.LogSoftmax(dim=-1))  # noqa: E731  CE(log_softmax) = CE
    assert cc.check_cnn_model(log_softmax_end, quiet=True).status == PASS
    with_bn = lambda: nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # noqa: E731
                                    nn.Flatten(), nn.Dropout(0.2), nn.Linear(512, 10))
    assert cc.check_cnn_model(with_bn, quiet=True).status == PASS
    assert cc.check_cnn_model(_stub, quiet=True).status == TODO
    model = build_cnn().train()
    assert cc.check_cnn_model(model, quiet=True).status == PASS and model.training  # mode restored


def test_cnn_accuracy_with_and_without_model():
    assert cc.check_cnn_accuracy(0.98, quiet=True).status == PASS
    assert cc.check_cnn_accuracy(0.5, quiet=True).status == FAIL
    assert cc.check_cnn_accuracy(None, quiet=True).status == TODO
    res = cc.check_cnn_accuracy(0.98, model=nn.Sequential(build_cnn(), nn.Softmax(-1)), quiet=True)
    assert res.status == FAIL and "Softmax" in res.message
    assert cc.check_cnn_accuracy(0.98, model=build_cnn(), quiet=True).status == PASS


def test_cnn_ending_in_a_sigmoid_is_caught():
    res = cc.check_cnn_model(lambda: nn.Sequential(build_cnn(), nn.Sigmoid()), quiet=True)
    assert res.status == FAIL and "sigmoid" in res.message
