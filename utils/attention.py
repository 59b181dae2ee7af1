"""Attention from scratch: scaled dot-product attention with masks.

Explained in chapter 3, "Attention and the Transformer". The reference for
``torch.nn.functional.scaled_dot_product_attention``; ours also returns the attention
weights so that a learner can look at them.

Shapes: B batch, nh heads, T query length, S key length, hs head size.
"""

from __future__ import annotations

import math

import torch

__all__ = ["scaled_dot_product_attention", "causal_mask"]


def causal_mask(T: int, S: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean mask ``(T, S)`` that is True where query ``t`` may attend to key ``s`` (``s <= t``)."""
    S = T if S is None else S
    if not isinstance(T, int) or not isinstance(S, int) or T <= 0 or S <= 0:
        raise ValueError(f"T and S must be positive ints, got T={T!r}, S={S!r}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""softmax(Q Kᵀ / √d_k) V  (Vaswani et al., 2017, eq. 1).

    Args:
        q: ``(..., T, hs)`` queries.
        k: ``(..., S, hs)`` keys.
        v: ``(..., S, hv)`` values.
        mask: optional boolean mask broadcastable to ``(..., T, S)``; **True means "may
            attend"** (the convention of ``torch.nn.functional.scaled_dot_product_attention``).
        scale: defaults to ``1 / sqrt(hs)``.
        dropout_p: dropout on the attention weights, applied only when ``training``.

    Returns:
        ``(output, weights)`` with shapes ``(..., T, hv)`` and ``(..., T, S)``.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must have shape (..., length, dim), got {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same head size (last dim): q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length (dim -2): k {tuple(k.shape)}, v {tuple(v.shape)}")
    T, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T, S)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a torch.bool tensor (True = may attend), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.ndim < 2 or mask.shape[-2:] not in {(T, S), (1, S), (T, 1), (1, 1)}:
            raise ValueError(f"mask must be broadcastable to (..., T, S) = (..., {T}, {S}), got {tuple(mask.shape)}")
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., T, S)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # a fully masked row attends to nothing
    if dropout_p > 0.0 and training:
        weights = torch.nn.functional.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., T, hv), (..., T, S)
