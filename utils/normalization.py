"""Normalisation layers from scratch: LayerNorm and RMSNorm, and batch normalisation to
contrast them with.

Explained in chapter 3, "Initialisation, residual connections and normalisation". For a vector
``x`` of C features (one token, one example):

    LayerNorm(x) = gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta      (Ba et al., 2016)
    RMSNorm(x)   = gamma * x / sqrt(mean(x^2) + eps)                      (Zhang and Sennrich, 2019)

with the mean and the (biased) variance taken over the C features of that one vector, so the
result does not depend on the other examples in the batch. Batch normalisation (chapter 3.1)
takes its statistics over the batch instead, one feature at a time: in training mode an
example's output depends on its batch-mates. LayerNorm is the normalisation of BERT and GPT-2;
RMSNorm, which skips the centring and the shift, that of Llama, Qwen and Mistral.

Ours match ``torch.nn.LayerNorm``, ``torch.nn.RMSNorm`` and (in training mode)
``torch.nn.BatchNorm1d`` (tested, float64, values and gradients); they exist to be read.

Shapes: any leading dimensions ``(..., C)`` (e.g. ``(B, T, C)``); batch norm takes ``(B, C)``.
"""

from __future__ import annotations

import torch
from torch import nn

from utils._validate import Float, PosFloat, PosInt, Tensor, checked

__all__ = ["layer_norm", "rms_norm", "batch_norm", "LayerNorm", "RMSNorm"]


@checked
def layer_norm(x: Float[Tensor, "... C"], weight: Float[Tensor, "C"] | None = None,
               bias: Float[Tensor, "C"] | None = None, eps: PosFloat = 1e-5) -> torch.Tensor:
    """Normalise each vector ``x[..., :]`` to mean 0 and variance 1 over its C features, then
    scale by ``weight`` (gamma) and shift by ``bias`` (beta): ``(..., C) -> (..., C)``.
    Counterpart: ``torch.nn.functional.layer_norm(x, (C,), weight, bias, eps)``."""
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = x.var(dim=-1, unbiased=False, keepdim=True)  # (..., 1), biased: divide by C
    y = (x - mean) / torch.sqrt(var + eps)  # (..., C)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


@checked
def rms_norm(x: Float[Tensor, "... C"], weight: Float[Tensor, "C"] | None = None, eps: PosFloat = 1e-6) -> torch.Tensor:
    """Divide each vector by its root mean square over the C features (no centring, no shift),
    then scale by ``weight``: ``(..., C) -> (..., C)``. As PyTorch and ``transformers`` (Llama)
    compute it: times the reciprocal square root, in float32 for float16 and bfloat16 inputs, the
    result rounded back to the input's dtype before the scaling.
    Counterpart: ``torch.nn.functional.rms_norm(x, (C,), weight, eps)``."""
    h = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # half precision: sum squares in float32
    y = (h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + eps)).to(x.dtype)  # (..., C), root mean square 1
    return y * weight if weight is not None else y


@checked
def batch_norm(x: Float[Tensor, "B C"], weight: Float[Tensor, "C"] | None = None,
               bias: Float[Tensor, "C"] | None = None, eps: PosFloat = 1e-5) -> torch.Tensor:
    """Batch normalisation in training mode, for contrast: each feature is normalised with the
    mean and biased variance of the **batch** ``(B, C) -> (B, C)`` (Ioffe and Szegedy, 2015).
    Counterpart: ``torch.nn.BatchNorm1d`` in training mode (running statistics not kept here)."""
    if x.shape[0] < 2:
        raise ValueError(f"batch statistics need at least 2 examples, got a batch of {x.shape[0]}")
    mean = x.mean(dim=0, keepdim=True)  # (1, C): over the batch, per feature
    var = x.var(dim=0, unbiased=False, keepdim=True)  # (1, C)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


@checked
class LayerNorm(nn.Module):
    """:func:`layer_norm` with learned ``weight`` (ones) and ``bias`` (zeros) of shape ``(C,)``;
    parameter names as ``torch.nn.LayerNorm``, so ``load_state_dict`` copies its weights."""

    def __init__(self, normalized_shape: PosInt, eps: PosFloat = 1e-5) -> None:
        super().__init__()
        C = self.normalized_shape = normalized_shape  # C: normalise the last dimension
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C))

    @checked(dims={"C": "normalized_shape"})
    def forward(self, x: Float[Tensor, "... C"]) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


@checked
class RMSNorm(nn.Module):
    """:func:`rms_norm` with a learned ``weight`` (ones) of shape ``(C,)``; names as
    ``torch.nn.RMSNorm``. (PyTorch's default ``eps=None`` means the dtype's machine epsilon;
    ours defaults to 1e-6, the first Llama's value; pass the same ``eps`` to both to compare.)"""

    def __init__(self, normalized_shape: PosInt, eps: PosFloat = 1e-6) -> None:
        super().__init__()
        C = self.normalized_shape = normalized_shape  # C: normalise the last dimension
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))

    @checked(dims={"C": "normalized_shape"})
    def forward(self, x: Float[Tensor, "... C"]) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)
