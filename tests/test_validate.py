"""The machinery of the declared checks (utils._validate): messages, shapes, dtypes, ranges, switches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from utils._validate import (Bool, Float, Int, NonNegInt, OneOf, PosInt, Prob, Tensor, Texts, check_ids, checked,
                             validation)


@checked
def _attend(q: Float[Tensor, "*B T hs"], k: Float[Tensor, "*B S hs"], mask: Bool[Tensor, "T S"] | None = None, *,
            steps: PosInt = 1, p: Prob = 0.5, mode: OneOf("a", "b") = "a", flag: bool = False) -> int:
    return q.shape[-2]


def test_good_input_passes_and_broadcasting_leading_dims_is_allowed():
    assert _attend(torch.zeros(2, 3, 4), torch.zeros(1, 5, 4), torch.ones(3, 5, dtype=torch.bool)) == 3


@pytest.mark.parametrize("call, kind, message", [
    (lambda: _attend([1.0], torch.zeros(2, 4)), TypeError, r"_attend\(\): q must be a floating-point tensor of shape "
                                                           r"\(\*B, T, hs\), got list"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 5)), ValueError, r"k must be .* = \(2, 4\), got float32 tensor "
                                                                        r"of shape \(2, 5\) \[hs=4 from q\]"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4, dtype=torch.float64)), TypeError, "of dtype float32 .as q."),
    (lambda: _attend(torch.zeros(2, 3, 4), torch.zeros(3, 2, 4)), ValueError, r"leading dims \(3,\) do not broadcast"),
    (lambda: _attend(torch.zeros(0, 4), torch.zeros(2, 4)), ValueError, r"q must be .*\[T must be at least 1\]"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), torch.ones(3, 3, dtype=torch.bool)), ValueError,
     r"mask must be None or a bool tensor of shape \(T, S\) = \(3, 2\)"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), steps=True), TypeError, "steps must be a positive int, got True"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), steps=0), ValueError, "steps must be a positive int, got 0"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), p=float("nan")), ValueError, r"p must be a probability"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), mode="c"), ValueError, "mode must be one of 'a', 'b', got 'c'"),
    (lambda: _attend(torch.zeros(3, 4), torch.zeros(2, 4), flag="no"), TypeError, r"flag must be a bool \(True or False\)"),
])
def test_bad_input_names_the_parameter_what_it_expects_and_what_came(call, kind, message):
    with pytest.raises(kind, match=message):
        call()


@checked
class _Box(nn.Module):
    def __init__(self, width: PosInt, pairs: tuple[NonNegInt, NonNegInt] = (0, 1), texts: Texts = ("a",)) -> None:
        super().__init__()
        self.width = width
        self.lin = nn.Linear(width, 2)

    @checked(dims={"C": "width"})
    def forward(self, x: Float[Tensor, "B C"], ids: Int[Tensor, "B"] | None = None) -> torch.Tensor:
        if ids is not None:
            check_ids("ids", ids, 2)
        return self.lin(x)


def test_classes_methods_self_dims_module_dtype_and_items():
    box = _Box(3)
    assert box(torch.zeros(2, 3)).shape == (2, 2)
    with pytest.raises(ValueError, match=r"_Box\(\): width must be a positive int, got -1"):
        _Box(-1)
    with pytest.raises(ValueError, match=r"pairs\[1\] must be a non-negative int, got -2"):
        _Box(3, pairs=(0, -2))
    with pytest.raises(ValueError, match=r"texts must be a non-empty list of str, got list \[it is empty\]"):
        _Box(3, texts=[])
    with pytest.raises(ValueError, match=r"x must be .* \(B, C\) = \(2, 3\), got .* \(2, 4\) \[C=3 from self.width\]"):
        box(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="of dtype float32 .as the module's parameters."):
        box(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"ids must hold ids in \[0, 2\), got values in \[0, 5\]"):
        box(torch.zeros(2, 3), torch.tensor([0, 5]))


def test_validation_can_be_switched_off_for_the_overhead_benchmark():
    with validation(False):
        assert _attend(torch.zeros(3, 4), torch.zeros(2, 5), steps=0) == 3
    with pytest.raises(ValueError):
        _attend(torch.zeros(3, 4), torch.zeros(2, 5))
