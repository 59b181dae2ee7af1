"""Checkers for the lab "Convolution from scratch" (labs/02_convolution_from_scratch)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from utils.checks import Case, CheckResult, check_threshold, run_cases

__all__ = ["conv_cases", "check_conv2d", "check_max_pool2d", "check_cnn_accuracy"]


def conv_cases() -> list[Case]:
    """Cases chosen to catch the usual mistakes: odd sizes, stride 2, padding, several channels, bias."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return [
        Case("1 channel, 5x5 input, 3x3 kernel", (r(1, 1, 5, 5), r(1, 1, 3, 3), r(1))),
        Case("odd sizes 7x9, 2x2 kernel", (r(2, 1, 7, 9), r(1, 1, 2, 2), r(1))),
        Case("stride 2", (r(1, 1, 7, 7), r(1, 1, 3, 3), r(1)), {"stride": 2}),
        Case("padding 1", (r(1, 1, 6, 6), r(1, 1, 3, 3), r(1)), {"padding": 1}),
        Case("3 input and 4 output channels, stride 2, padding 2",
             (r(2, 3, 8, 7), r(4, 3, 3, 3), r(4)), {"stride": 2, "padding": 2}),
    ]


def _reference_conv(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def check_conv2d(fn: Callable, *, name: str = "conv2d") -> CheckResult:
    """Compare the learner's ``fn(x, weight, bias, stride=..., padding=...)`` with ``F.conv2d``."""
    return run_cases(fn, _reference_conv, conv_cases(), name=name, atol=1e-8, rtol=1e-6)


def check_max_pool2d(fn: Callable, *, name: str = "max_pool2d") -> CheckResult:
    """Compare the learner's ``fn(x, kernel_size, stride)`` with ``F.max_pool2d``."""
    g = torch.Generator().manual_seed(1)
    cases = [
        Case("4x4, window 2", (torch.randn(1, 1, 4, 4, generator=g), 2, 2)),
        Case("odd 5x7, window 2 (the last row/column is dropped)", (torch.randn(2, 3, 5, 7, generator=g), 2, 2)),
        Case("window 3, stride 2 (overlapping)", (torch.randn(1, 2, 7, 7, generator=g), 3, 2)),
    ]
    return run_cases(fn, lambda x, k, s: F.max_pool2d(x, k, s), cases, name=name)


def check_cnn_accuracy(accuracy: float | None, target: float = 0.97) -> CheckResult:
    """The trained CNN must reach ``target`` test accuracy on the fixed digits split."""
    return check_threshold(accuracy, target, name="CNN test accuracy")
