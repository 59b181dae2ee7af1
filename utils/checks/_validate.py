"""Argument checks for the reference implementations in :mod:`utils.checks`: one call per argument,
raising ``TypeError``/``ValueError`` that names the parameter, what was expected and what came."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from utils.checks._compare import describe, fmt_shape

__all__ = ["tensor_arg", "number_arg", "int_arg", "function_arg", "same_size"]


def tensor_arg(name: str, value: Any, *, ndim: int | Sequence[int] | None = None, floating: bool = False,
               integer: bool = False, boolean: bool = False, shape: str = "") -> torch.Tensor:
    """``value`` if it is a tensor of the given rank and kind; ``shape`` (e.g. ``"(N, D)"``) is
    quoted in the message."""
    want = f" of shape {shape}" if shape else ""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{want}, got {describe(value)}")
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim or ())
    if ranks and value.ndim not in ranks:
        raise ValueError(f"{name} must have {' or '.join(map(str, ranks))} dimensions{want}, "
                         f"got shape {fmt_shape(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    if boolean and value.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got dtype {value.dtype}")
    return value


def number_arg(name: str, value: Any, *, positive: bool = False, low: float | None = None,
               high: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (not a bool) within the bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if low is not None and v < low or high is not None and v > high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


def int_arg(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def function_arg(name: str, value: Any) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {describe(value)}")
    return value


def same_size(name: str, value: torch.Tensor, dim: int, size: int, other: str) -> None:
    """Raise ``ValueError`` unless ``value.shape[dim] == size`` (the size of ``other``)."""
    if value.shape[dim] != size:
        raise ValueError(f"{name} has size {value.shape[dim]} along dim {dim}, but {other} has {size}: "
                         f"got shape {fmt_shape(value.shape)}")
