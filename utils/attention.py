"""Attention from scratch: scaled dot-product attention with masks.

Explained in chapter 3, "Attention and the Transformer". The reference for
``torch.nn.functional.scaled_dot_product_attention``; ours also returns the attention
weights so that a learner can look at them.

Shapes: B batch, nh heads, T query length, S key length, hs head size, C model width
(``d_model`` = nh * hs).

Mask convention everywhere in this module: a **boolean** tensor, **True = may attend**
(as in ``torch.nn.functional.scaled_dot_product_attention``). Beware that
``torch.nn.MultiheadAttention`` uses the opposite convention for ``attn_mask`` and
``key_padding_mask`` (True = blocked); :func:`to_torch_mha_masks` converts.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Bool, Device, Dropout, Finite, Float, Integer, PosFloat, PosInt, Tensor, checked

Mask = Annotated[Bool[Tensor, "..."], "a torch.bool tensor (True = may attend)"]  # broadcastable to the scores

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "to_torch_mha_masks",
    "MultiHeadAttention",
    "retemper",
    "toy_qk_attention",
]


@checked
def causal_mask(T: PosInt, S: PosInt | None = None, *, device: Device | None = None) -> torch.Tensor:
    """Boolean mask ``(T, S)`` that is True where query ``t`` may attend to key ``s`` (``s <= t``)."""
    S = T if S is None else S
    if not isinstance(T, int) or not isinstance(S, int) or T <= 0 or S <= 0:
        raise ValueError(f"T and S must be positive ints, got T={T!r}, S={S!r}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


@checked
def scaled_dot_product_attention(
    q: Float[Tensor, "*B T hs"],
    k: Float[Tensor, "*B S hs"],
    v: Float[Tensor, "*B S hv"],
    mask: Mask | None = None,
    *,
    scale: PosFloat | None = None,
    dropout_p: Dropout = 0.0,
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
    if mask is not None and not bool(mask.any(dim=-1).all()):
        weights = weights.nan_to_num(0.0)  # a fully masked row (all -inf -> NaN) attends to nothing
    if dropout_p > 0.0 and training:
        weights = torch.nn.functional.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., T, hv), (..., T, S)


@checked
def padding_mask(lengths_or_attention_mask: Integer[Tensor, "B"] | Integer[Tensor, "B S"] | Bool[Tensor, "B S"],
                 S: PosInt | None = None) -> torch.Tensor:
    """Key-padding mask ``(B, 1, 1, S)`` (True = a real token that may be attended to).

    Args:
        lengths_or_attention_mask: either ``(B,)`` integer lengths (then ``S`` is required,
            or defaults to the longest length) or a ``(B, S)`` 0/1 or boolean
            ``attention_mask`` as returned by a Hugging Face tokenizer.
        S: key length, only with lengths.

    The result broadcasts against scores ``(B, nh, T, S)``: every query row of sequence
    ``b`` ignores the padded keys of ``b``.
    """
    x = lengths_or_attention_mask
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lengths_or_attention_mask must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 1:
        if x.is_floating_point() or x.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor (B,), got dtype {x.dtype}")
        S = int(x.max()) if S is None else S
        if not isinstance(S, int) or S <= 0:
            raise ValueError(f"S must be a positive int, got {S!r}")
        if (x < 0).any() or (x > S).any():
            raise ValueError(f"lengths must lie in [0, S={S}], got {x.tolist()}")
        mask = torch.arange(S, device=x.device) < x[:, None]  # (B, S)
    elif x.ndim == 2:
        if S is not None and S != x.shape[1]:
            raise ValueError(f"S={S} disagrees with attention_mask of shape {tuple(x.shape)}")
        if x.is_floating_point() or not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("attention_mask must hold only 0/1 (or True/False) values")
        mask = x.bool()  # (B, S)
    else:
        raise ValueError("lengths_or_attention_mask must be lengths (B,) or an attention_mask (B, S), "
                         f"got shape {tuple(x.shape)}")
    return mask[:, None, None, :]  # (B, 1, 1, S)


@checked
def combine_masks(*masks: Mask | None) -> torch.Tensor | None:
    """Logical AND of boolean masks (``None`` entries are skipped): attend only where all allow."""
    out = None
    for i, m in enumerate(masks):
        if m is None:
            continue
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"masks[{i}] must be a torch.bool tensor, got {getattr(m, 'dtype', type(m).__name__)}")
        out = m if out is None else out & m
    return out


@checked
def to_torch_mha_masks(mask: Mask | None) -> torch.Tensor | None:
    """Our mask (True = may attend) -> ``attn_mask`` for ``nn.MultiheadAttention`` (True = blocked)."""
    return None if mask is None else ~mask


@checked
class MultiHeadAttention(nn.Module):
    r"""Multi-head attention from scratch (Vaswani et al., 2017, section 3.2.2).

    MultiHead(Q, K, V) = Concat(head_1, ..., head_nh) W_O with
    head_i = Attention(Q W_Q^i, K W_K^i, V W_V^i).

    Parameters use the layout of ``torch.nn.MultiheadAttention`` so weights copy across:
    ``in_proj_weight`` ``(3C, C)`` stacks ``[W_q; W_k; W_v]`` (each ``(C, C)``, applied as
    ``x @ W.T``), ``in_proj_bias`` ``(3C,)``, ``out_proj`` an ``nn.Linear(C, C)``. Head ``i``
    uses rows ``i*hs:(i+1)*hs`` of each projection. Ours exists to show every step and to
    return the weights of **every head** ``(B, nh, T, S)``.

    Args:
        d_model: C, the model width; must be divisible by ``num_heads``.
        num_heads: nh; the head size is ``hs = C // nh``.
        bias: whether projections have biases.
        dropout: dropout on the attention weights (training only).
        fused: compute the weighted sum with ``F.scaled_dot_product_attention`` (faster,
            returns ``weights=None``); the default explicit path returns the weights.
    """

    def __init__(self, d_model: PosInt, num_heads: PosInt, *, bias: bool = True, dropout: Dropout = 0.0,
                 fused: bool = False) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if d_model % num_heads:
            raise ValueError(f"d_model must be divisible by num_heads: got d_model={d_model}, "
                             f"num_heads={num_heads} (head size would be {d_model / num_heads:g})")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.dropout, self.fused = dropout, fused
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model)) if bias else None
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    @torch.no_grad()
    @checked
    def load_from_torch(self, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (same C and nh) into this module."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise TypeError(f"mha must be a torch.nn.MultiheadAttention, got {type(mha).__name__}")
        if (mha.embed_dim, mha.num_heads) != (self.d_model, self.num_heads):
            raise ValueError(f"mha has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; "
                             f"expected {self.d_model}, {self.num_heads}")
        if mha.in_proj_weight is None:
            raise ValueError("mha must use a packed in_proj_weight (kdim == vdim == embed_dim)")
        self.in_proj_weight.copy_(mha.in_proj_weight)
        if self.in_proj_bias is not None:
            self.in_proj_bias.copy_(mha.in_proj_bias)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        return self

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # (B, nh, L, hs)

    def _check_mask(self, mask: torch.Tensor, B: int, T: int, S: int) -> None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a torch.bool tensor (True = may attend), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        target = (B, self.num_heads, T, S)
        try:
            ok = mask.ndim in (2, 3, 4) and torch.broadcast_shapes(mask.shape, target) == target
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"mask must be broadcastable to (B, nh, T, S) = {target}, e.g. (T, S) "
                             f"or (B, 1, 1, S); got {tuple(mask.shape)}")

    @checked(dims={"C": "d_model"})
    def forward(self, query: Float[Tensor, "B T C"], key: Float[Tensor, "B S C"] | None = None,
                value: Float[Tensor, "B S C"] | None = None,
                mask: Mask | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention when ``key``/``value`` are omitted, cross-attention otherwise.

        Args:
            query: ``(B, T, C)``; key, value: ``(B, S, C)`` (default: ``query``).
            mask: boolean, True = may attend, broadcastable to ``(B, nh, T, S)``: e.g.
                :func:`causal_mask` ``(T, S)`` or :func:`padding_mask` ``(B, 1, 1, S)``.

        Returns:
            ``(output, weights)``: ``(B, T, C)`` and ``(B, nh, T, S)`` (``None`` if ``fused``).
        """
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.ndim != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (B, L, C={self.d_model}), got {tuple(t.shape)}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"query (B, T, C), key and value (B, S, C) must agree on B and S: "
                             f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}")
        B, T, S = query.shape[0], query.shape[1], key.shape[1]
        if mask is not None:
            self._check_mask(mask, B, T, S)
        # 1. project: q, k, v = x W_q^T + b_q, ...  using the stacked [W_q; W_k; W_v]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)  # each (C, C)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3
        q = self._split_heads(F.linear(query, w_q, b_q))  # (B, nh, T, hs)
        k = self._split_heads(F.linear(key, w_k, b_k))  # (B, nh, S, hs)
        v = self._split_heads(F.linear(value, w_v, b_v))  # (B, nh, S, hs)
        # 2. attend in every head at once
        p = self.dropout if self.training else 0.0
        if self.fused:
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p, training=self.training)
        # 3. concatenate the heads and mix them with W_O
        out = out.transpose(1, 2).reshape(B, T, self.d_model)  # (B, T, C)
        return self.out_proj(out), weights


@checked
def retemper(weights: Float[Tensor, "... T S"], temperature: PosFloat = 1.0, *, causal: bool = False) -> torch.Tensor:
    r"""Recompute softmax rows ``(..., T, S)`` at another temperature, optionally causally masked.

    Because weights = softmax(scores), log(weights) equals the scores up to a constant per
    row, so softmax(log(weights) / temperature) = softmax(scores / temperature) exactly: the
    widget can change the temperature of stored weights without the model. Temperature 1
    returns the weights unchanged; < 1 sharpens, > 1 flattens. ``causal`` zeroes the
    weights above the diagonal and renormalises each row (a what-if for one layer; a model
    trained with the mask would also have other weights).
    """
    if not isinstance(weights, torch.Tensor) or weights.ndim < 2:
        raise TypeError(f"weights must be a tensor (..., T, S), got {type(weights).__name__}")
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    logw = weights.clamp_min(0).log()  # (..., T, S), -inf where a weight is 0
    if causal:
        T, S = weights.shape[-2:]
        logw = logw.masked_fill(~causal_mask(T, S, device=weights.device), float("-inf"))
    return torch.softmax(logw / temperature, dim=-1).nan_to_num(0.0)  # (..., T, S)


@checked
def toy_qk_attention(query: Float[Tensor, "d"], keys: Float[Tensor, "K d"], *,
                     scale: Finite = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One query ``(d,)`` against keys ``(K, d)``: returns ``(scores (K,), weights (K,))``.

    scores = scale * (keys @ query); weights = softmax(scores). The Q/K toy of the widget.
    """
    if not isinstance(query, torch.Tensor) or not isinstance(keys, torch.Tensor):
        raise TypeError("query and keys must be torch.Tensors")
    if query.ndim != 1 or keys.ndim != 2 or keys.shape[1] != query.shape[0]:
        raise ValueError(f"query must be (d,) and keys (K, d) with the same d, got {tuple(query.shape)} "
                         f"and {tuple(keys.shape)}")
    scores = scale * (keys @ query)  # (K,)
    return scores, torch.softmax(scores, dim=0)
