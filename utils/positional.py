"""Positional information for attention: sinusoidal, learned and rotary (RoPE) encodings.

Explained in chapter 3, "Multi-head attention and positions". Attention by itself is
permutation-equivariant: shuffle the tokens and the outputs shuffle the same way. These
modules give each token its position.

Shapes: B batch, T sequence length, C model width (``d_model``), hs head size.
"""

from __future__ import annotations

import torch
from torch import nn

from utils._validate import Float, NonNegInt, OneOf, PosFloat, PosInt, Tensor, checked

FloatDtype = OneOf(torch.float32, torch.float64, torch.float16, torch.bfloat16)

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rope_angles",
    "apply_rope",
]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@checked
def sinusoidal_encoding(num_positions: PosInt, d_model: PosInt, *, base: PosFloat = 10000.0,
                        dtype: FloatDtype = torch.float32) -> torch.Tensor:
    r"""The sinusoidal table of Vaswani et al. (2017, section 3.5), shape ``(T, C)``.

    PE(pos, 2i) = sin(pos / base^{2i/C}),  PE(pos, 2i+1) = cos(pos / base^{2i/C}):
    sines on the even dimensions, cosines on the odd ones (interleaved, not concatenated),
    one frequency per pair. ``d_model`` must be even.
    """
    _check_positive_int("num_positions", num_positions)
    _check_positive_int("d_model", d_model)
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (C/2,) = 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (T, C/2)
    pe = torch.empty(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)  # even dimensions 2i
    pe[:, 1::2] = torch.cos(angle)  # odd dimensions 2i+1
    return pe.to(dtype)


def _check_length(x: torch.Tensor, max_len: int, d_model: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 3 or x.shape[-1] != d_model:
        raise ValueError(f"x must have shape (B, T, C={d_model}), got {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length T={x.shape[1]} exceeds the positional table (max_len={max_len}); "
                         "build the module with a larger max_len or use shorter sequences")


@checked
class SinusoidalPositionalEncoding(nn.Module):
    """Adds :func:`sinusoidal_encoding` to token embeddings ``(B, T, C)``; no parameters.

    Counterpart: none in ``torch.nn``; the table is a buffer of ``max_len`` rows.
    """

    def __init__(self, d_model: PosInt, max_len: PosInt = 512) -> None:
        super().__init__()
        _check_positive_int("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)  # (max_len, C)

    @checked(dims={"C": "d_model"}, mixed_dtypes=True)
    def forward(self, x: Float[Tensor, "B T C"]) -> torch.Tensor:
        _check_length(x, self.max_len, self.d_model)
        return x + self.pe[: x.shape[1]].to(x.dtype)  # (B, T, C)


@checked
class LearnedPositionalEmbedding(nn.Module):
    """Adds a trained vector per position (BERT, GPT-2): an ``nn.Embedding(max_len, C)``.

    It cannot say anything about positions it never saw in training, and has none beyond
    ``max_len``.
    """

    def __init__(self, d_model: PosInt, max_len: PosInt = 512) -> None:
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("max_len", max_len)
        self.d_model, self.max_len = d_model, max_len
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    @checked(dims={"C": "d_model"}, mixed_dtypes=True)
    def forward(self, x: Float[Tensor, "B T C"]) -> torch.Tensor:
        _check_length(x, self.max_len, self.d_model)
        pos = torch.arange(x.shape[1], device=x.device)  # (T,)
        return x + self.embedding(pos).to(x.dtype)  # (B, T, C)


@checked
def rope_angles(num_positions: PosInt, head_dim: PosInt, *, base: PosFloat = 10000.0,
                dtype: FloatDtype = torch.float32,
                compute_dtype: FloatDtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(cos, sin)`` tables ``(T, hs/2)`` of rotary embeddings (Su et al., 2021, RoFormer).

    Pair ``i`` (dimensions ``2i`` and ``2i+1``) at position ``m`` turns by the angle
    m * theta_i with theta_i = base^{-2i/hs}: the same frequencies as the sinusoidal table.
    The angles are computed in ``compute_dtype``: float64 by default; ``torch.float32``
    reproduces ``transformers``' Llama tables bit for bit (1 / base^{2i/hs} and m * theta_i
    rounded to float32, an angle error of about 3e-5 rad at position 512).
    """
    _check_positive_int("num_positions", num_positions)
    _check_positive_int("head_dim", head_dim)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even (rotated pairs), got {head_dim}")
    if compute_dtype == torch.float64:
        theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hs/2,)
    else:  # transformers' rounding: inverse of a float32 power
        theta = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(compute_dtype) / head_dim))
    angle = torch.arange(num_positions, dtype=compute_dtype)[:, None] * theta  # (T, hs/2)
    return angle.cos().to(dtype), angle.sin().to(dtype)


@checked(mixed_dtypes=True)
def apply_rope(x: Float[Tensor, "... T hs"], cos: Float[Tensor, "L half"], sin: Float[Tensor, "L half"], *,
               offset: NonNegInt = 0, layout: OneOf("interleaved", "half") = "interleaved") -> torch.Tensor:
    r"""Rotate each pair ``(x_{2i}, x_{2i+1})`` of queries or keys ``(..., T, hs)`` by its angle.

    (x_{2i}, x_{2i+1}) -> (x_{2i} cos - x_{2i+1} sin, x_{2i} sin + x_{2i+1} cos).
    Because rotations compose, q_m · k_n depends on m and n only through m - n: the score
    sees relative position. ``cos``/``sin`` come from :func:`rope_angles` with at least
    ``offset + T`` rows.

    ``offset``: position of the first of the T rows (the number of tokens a KV cache already
    holds), so row t turns by the angle of position ``offset + t``.
    ``layout``: which dimensions form pair i. ``"interleaved"`` (RoFormer, GPT-J, llama.cpp):
    ``(2i, 2i+1)``; ``"half"`` (Hugging Face's Llama, ``rotate_half``): ``(i, i + hs/2)``. The
    two are the same rotation of a permuted vector; a checkpoint's q and k weights are stored for
    one of them.
    """
    if x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., T, hs) with even hs, got {tuple(x.shape)}")
    T, half = x.shape[-2], x.shape[-1] // 2
    if cos.shape != sin.shape or cos.ndim != 2 or cos.shape[1] != half:
        raise ValueError(f"cos and sin must both be (max_len, hs/2={half}), got {tuple(cos.shape)}, {tuple(sin.shape)}")
    if offset + T > cos.shape[0]:
        raise ValueError(f"positions up to offset + T = {offset + T} exceed the rotary table (max_len={cos.shape[0]})"
                         if offset else f"sequence length T={T} exceeds the rotary table (max_len={cos.shape[0]})")
    c, s = cos[offset:offset + T].to(x.dtype), sin[offset:offset + T].to(x.dtype)  # (T, hs/2)
    if layout == "half":
        x1, x2 = x[..., :half], x[..., half:]  # (..., T, hs/2) each: pair i is (x1_i, x2_i)
        return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)  # (..., T, hs)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2)
    out = torch.stack([x_even * c - x_odd * s, x_even * s + x_odd * c], dim=-1)  # (..., T, hs/2, 2)
    return out.flatten(-2)  # (..., T, hs), pairs back in place
