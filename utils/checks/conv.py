"""Checkers for the lab "Convolution from scratch" (labs/02_convolution_from_scratch).

``check_conv2d`` compares the learner's convolution with ``F.conv2d`` on cases that catch the usual
mistakes (odd sizes, stride, padding, several channels, ``bias=None`` passed or left to its default),
checks that gradients flow to the input, the kernels and the bias, and names the likely bug: a
flipped kernel, the stride or the padding ignored, the bias missing, the output size without its
``+ 1``, the kernels flattened in the wrong order, a float32 accumulator. ``check_max_pool2d`` does
the same for max pooling. ``check_cnn_model`` inspects the learner's network before training: it
must map ``(B, 1, 8, 8)`` to ``(B, 10)`` logits (not probabilities: a final ``nn.Softmax`` before a
cross-entropy loss trains badly and is caught), and every parameter must receive a gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import (FAIL, PASS, Case, CheckResult, _report, call_learner, check_threshold, describe, guarded,
                          lenient, run_cases)

__all__ = ["conv_cases", "check_conv2d", "check_max_pool2d", "check_cnn_model", "check_cnn_accuracy"]


def conv_cases() -> list[Case]:
    """Cases chosen to catch the usual mistakes: odd sizes, stride 2, padding, several channels, bias,
    ``bias=None`` and the bias left out (its default, None)."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case("1 channel, 5x5 input, 3x3 kernel", (r(1, 1, 5, 5), r(1, 1, 3, 3), r(1))),
        Case("odd sizes 7x9, 2x2 kernel", (r(2, 1, 7, 9), r(1, 1, 2, 2), r(1))),
        Case("stride 2", (r(1, 1, 7, 7), r(1, 1, 3, 3), r(1)), {"stride": 2}),
        Case("padding 1", (r(1, 1, 6, 6), r(1, 1, 3, 3), r(1)), {"padding": 1}),
        Case("3 input and 4 output channels, stride 2, padding 2",
             (r(2, 3, 8, 7), r(4, 3, 3, 3), r(4)), {"stride": 2, "padding": 2}),
        Case("bias=None, 2 input and 3 output channels", (r(1, 2, 5, 6), r(3, 2, 3, 3), None), {"padding": 1}),
        Case("bias left out (its default is None)", (r(2, 2, 6, 5), r(2, 2, 2, 2))),
    ]


def _reference_conv(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def _out_size(x, weight, stride, padding):
    K = weight.shape[-1]
    return (x.shape[2] + 2 * padding - K) // stride + 1, (x.shape[3] + 2 * padding - K) // stride + 1


def _top_left_windows(x, weight, bias=None, stride=1, padding=0):
    H_out, W_out = _out_size(x, weight, stride, padding)
    return F.conv2d(x, weight, bias, padding=padding)[..., :H_out, :W_out]


def _transposed_reshape(x, weight, bias=None, stride=1, padding=0):
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    B, C, H, W = y.shape
    return y.reshape(B, C, H * W).reshape(B, C, W, H).transpose(2, 3)


def _reflect(mode):
    def conv(x, weight, bias=None, stride=1, padding=0):
        return F.conv2d(F.pad(x, (padding,) * 4, mode=mode), weight, bias, stride=stride)
    return conv


_CONV_MISTAKES = [
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w.flip(-2, -1), b, stride=stride, padding=padding),
     "the kernel is flipped: a deep-learning 'convolution' is a cross-correlation, "
     "y[i, j] = sum x_pad[i*s + m, j*s + n] * w[m, n], without flipping w"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, None, stride=stride, padding=padding),
     "the bias is not added: add bias[o] to every position of output channel o, bias.view(1, -1, 1, 1)"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride=stride),
     "the padding is ignored: pad x with zeros on every side first, F.pad(x, (p, p, p, p)) (the expected shape "
     "follows H_out = (H + 2p - K) // stride + 1)"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, padding=padding),
     "the stride is ignored: window (i, j) starts at (i * stride, j * stride), and H_out = (H + 2p - K) // stride + 1"),
    (_top_left_windows, "each window starts at (i * stride, j * stride): multiply the output index by the stride"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride=stride, padding=padding)[..., :-1, :-1],
     "the output is one row and one column too small: H_out = (H + 2p - K) // stride + 1, the + 1 included"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(F.pad(x, (padding, padding)), w, b, stride=stride),
     "only the width is padded: F.pad(x, (p, p)) pads the last dimension alone; pad both, F.pad(x, (p, p, p, p))"),
    (_reflect("reflect"), "pad with zeros (F.pad's default, mode='constant'), not by reflection"),
    (_reflect("replicate"), "pad with zeros (F.pad's default, mode='constant'), not by repeating the border"),
    (lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w.permute(0, 2, 3, 1).reshape(w.shape), b, stride=stride,
                                                        padding=padding),
     "the kernels are flattened in the wrong order: weight.reshape(C_out, -1) already matches F.unfold's "
     "(C_in, K, K) order"),
    (_transposed_reshape, "the output is reshaped in the wrong order: F.unfold's columns run row by row, so "
                          "reshape the product to (B, C_out, H_out, W_out) directly"),
]


@guarded("conv2d")
def check_conv2d(fn: Callable, *, name: str = "conv2d", quiet: bool = False) -> CheckResult:
    """Compare the learner's ``fn(x, weight, bias=None, stride=1, padding=0)`` with ``F.conv2d``:
    values on every case, then the gradients with respect to ``x``, ``weight`` and ``bias``."""
    return run_cases(fn, _reference_conv, conv_cases(), name=name, atol=1e-8, rtol=1e-6, quiet=quiet,
                     mistakes=_CONV_MISTAKES, arg_names=("x", "weight", "bias", "stride", "padding"),
                     gradients=(0, 1, 2))


_POOL_MISTAKES = [
    (lambda x, k, s: F.avg_pool2d(x, k, s), "take the maximum of each window, not the mean"),
    (lambda x, k, s: -F.max_pool2d(-x, k, s), "take the maximum of each window, not the minimum"),
    (lambda x, k, s: F.max_pool2d(x, k, k), "the windows move by `stride`, not by kernel_size"),
    (lambda x, k, s: F.max_pool2d(x, k, 1), "the windows move by `stride`, not by 1"),
    (lambda x, k, s: F.max_pool2d(x, k, s, ceil_mode=True),
     "windows that run past the edge are dropped, as in PyTorch: H_out = (H - kernel_size) // stride + 1"),
]


@guarded("max_pool2d")
def check_max_pool2d(fn: Callable, *, name: str = "max_pool2d", quiet: bool = False) -> CheckResult:
    """Compare the learner's ``fn(x, kernel_size, stride)`` with ``F.max_pool2d`` (values and the
    gradient with respect to ``x``)."""
    g = torch.Generator().manual_seed(1)
    cases = [
        Case("4x4, window 2", (torch.randn(1, 1, 4, 4, generator=g), 2, 2)),
        Case("odd 5x7, window 2 (the last row/column is dropped)", (torch.randn(2, 3, 5, 7, generator=g), 2, 2)),
        Case("window 3, stride 2 (overlapping)", (torch.randn(1, 2, 7, 7, generator=g), 3, 2)),
        Case("window 2, stride 1, float64", (torch.randn(2, 1, 5, 4, generator=g, dtype=torch.float64), 2, 1)),
    ]
    return run_cases(fn, lambda x, k, s: F.max_pool2d(x, k, s), cases, name=name, quiet=quiet,
                     mistakes=_POOL_MISTAKES, arg_names=("x", "kernel_size", "stride"), gradients=(0,))


def _logits_problem(out: torch.Tensor) -> str | None:
    """Name what is wrong with a classifier's output ``(B, 10)`` if it is not a batch of logits."""
    o = out.detach().to(torch.float64).cpu()
    if not torch.isfinite(o).all():
        return "the output contains NaN or inf"
    if (o >= 0).all() and torch.allclose(o.sum(-1), torch.ones(o.shape[0], dtype=torch.float64), atol=1e-4):
        return ("the network outputs probabilities (its rows sum to 1): remove the final nn.Softmax; the "
                "cross-entropy loss applies log-softmax itself, and a softmax before it squashes the gradients")
    if (o > 0).all() and (o < 1).all():
        return ("the network ends in a sigmoid (every output lies in (0, 1)): the last layer must be the nn.Linear "
                "that returns the 10 logits, with no activation after it")
    if (o >= 0).all() and (o == 0).any():
        return ("the network ends in a ReLU (no output is negative): the last layer must be the nn.Linear that "
                "returns the 10 logits, with no activation after it")
    return None


@guarded("build_cnn")
def check_cnn_model(build_cnn: Callable[[], nn.Module] | nn.Module, *, quiet: bool = False) -> CheckResult:
    """Check the learner's ``build_cnn()`` (or an ``nn.Module``) before training: ``(B, 1, 8, 8)`` in,
    ``(B, 10)`` logits out (not probabilities), and a gradient for every parameter."""
    name = "build_cnn"
    if isinstance(build_cnn, nn.Module):
        model = build_cnn
    else:
        model, failed = call_learner(name, build_cnn, [])
        if failed is not None:
            return _report(failed, quiet)
    if not isinstance(model, nn.Module):
        return _report(CheckResult(name, FAIL, f"build_cnn() must return an nn.Module, got {describe(model)}"), quiet)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        return _report(CheckResult(name, FAIL, "the model has no parameters: add the convolution and linear "
                                               "layers"), quiet)
    except Exception as exc:
        return _report(CheckResult(name, FAIL, f"model.parameters() raised {type(exc).__name__}: {exc}"), quiet)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=g).to(device)
    y = torch.randint(0, 10, (16,), generator=g).to(device)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out, failed = call_learner(name, model, [x], case="a batch of 16 images (16, 1, 8, 8)")
        if failed is not None:
            if "mat1 and mat2" in failed.message:
                failed = CheckResult(name, FAIL, failed.message.split(". Likely cause")[0] + ". Likely cause: the "
                                     "first nn.Linear does not expect the number of features the convolutions "
                                     "produce; measure it with a dummy forward pass, features(torch.zeros(1, 1, 8, "
                                     "8)).numel()")
            return _report(failed, quiet)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (16, 10) or not out.is_floating_point():
            return _report(CheckResult(name, FAIL, f"for images of shape (16, 1, 8, 8) the model must return "
                                                   f"logits of shape (16, 10), got {describe(out)}"), quiet)
        problem = _logits_problem(out)
        if problem:
            return _report(CheckResult(name, FAIL, problem), quiet)
        model.train()
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            out, failed = call_learner(name, model, [x], case="a training batch")
            if failed is not None:
                return _report(failed, quiet)
            try:
                F.cross_entropy(out, y).backward()
            except Exception as exc:
                return _report(CheckResult(name, FAIL, f"backpropagating the loss failed ({type(exc).__name__}: "
                                                       f"{str(exc)[:200]}): something cuts the graph"), quiet)
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        model.zero_grad(set_to_none=True)
        if missing:
            return _report(CheckResult(name, FAIL, f"no gradient reaches {missing[:4]}: a layer is created but not "
                                                   "used in forward, or something cuts the graph (.detach(), "
                                                   "torch.no_grad())"), quiet)
    finally:
        model.train(was_training)
    return _report(CheckResult(name, PASS, "maps (B, 1, 8, 8) images to (B, 10) logits, and every parameter gets a "
                                           "gradient"), quiet)


@guarded("CNN test accuracy")
def check_cnn_accuracy(accuracy: float | None, target: float = 0.97, *, model: nn.Module | None = None,
                       split: str = "test", quiet: bool = False) -> CheckResult:
    """The trained CNN must reach ``target`` accuracy on the fixed digits split (``split`` names which
    part was measured: the lab checks the validation accuracy, so that the learner's choices never
    look at the test set); given the ``model``, it must also return logits (no final softmax)."""
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
    name = f"CNN {split} accuracy"
    if model is not None and accuracy is not None:
        with lenient():
            result = check_cnn_model(model, quiet=True)
        if result.status == FAIL:
            return _report(CheckResult(name, FAIL, f"accuracy {accuracy}, but: {result.message}"), quiet)
    return check_threshold(accuracy, target, name=name, quiet=quiet)
