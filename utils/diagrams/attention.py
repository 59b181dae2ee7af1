"""Attention diagrams for chapter 3.4: queries, keys and values with the output point, and the
split and merge of multi-head attention with its shapes.

:func:`qkv_example` computes what :func:`draw_qkv` shows with
:func:`utils.attention.scaled_dot_product_attention`; :func:`multi_head_shapes` performs the
reshapes of :class:`utils.attention.MultiHeadAttention` on a tensor and reports the shapes that
:func:`draw_multi_head` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Polygon, Rectangle

from utils._validate import Float, PosInt, Tensor, check, checked
from utils.attention import scaled_dot_product_attention
from utils.diagrams._draw import COLORS, arrow, label, new_axes

__all__ = ["QKVExample", "qkv_example", "draw_qkv", "multi_head_shapes", "draw_multi_head"]

_KEY_COLORS = ["#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]


@checked
@dataclass
class QKVExample:
    """One query ``q (d,)``, keys ``K (S, d)``, values ``V (S, 2)``, their ``scores (S,)``
    ``= K q / sqrt(d)``, ``weights (S,)`` = softmax(scores) and the ``output (2,)`` = weights @ V."""

    q: Float[Tensor, "d"]
    K: Float[Tensor, "S d"]
    V: Float[Tensor, "S 2"]
    scores: Float[Tensor, "S"]
    weights: Float[Tensor, "S"]
    output: Float[Tensor, "2"]


@checked(mixed_dtypes=True)
def qkv_example(q: Sequence[float] | Float[Tensor, "d"] = (1.0, 0.5),
                K: Sequence[Sequence[float]] | Float[Tensor, "S d"] = ((1.5, 0.4), (0.2, 1.4), (-1.2, -0.6)),
                V: Sequence[Sequence[float]] | Float[Tensor, "S 2"] = ((0.0, 0.0), (3.0, 0.6), (1.2, 2.6))
                ) -> QKVExample:
    """Scaled dot-product attention of one 2-D query over S keys with 2-D values (lists or tensors)."""
    q, K, V = (torch.as_tensor(t, dtype=torch.float64) for t in (q, K, V))
    check(K.ndim == 2 and K.shape[1] == q.shape[0] > 0, "K", f"(S, d): keys as long as q (d = {q.shape[0]})",
          tuple(K.shape))
    check(V.shape == (K.shape[0], 2), "V", f"(S = {K.shape[0]}, 2): one 2-D value per key", tuple(V.shape))
    out, w = scaled_dot_product_attention(q[None], K, V)  # (1, 2), (1, S)
    return QKVExample(q, K, V, (K @ q) / q.shape[0] ** 0.5, w[0], out[0])


@checked
def draw_qkv(example: QKVExample | None = None) -> plt.Figure:
    """Left: the query and the keys (key space), each key labelled with its score and weight.
    Right: the values (value space) and the output, the weighted average ``sum_s a_s v_s``, which
    lies inside the triangle (convex hull) of the values; line widths follow the weights."""
    ex = example or qkv_example()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.0, 4.4))
    lim = float(ex.K.abs().max().clamp_min(ex.q.abs().max())) * 1.7
    a1.set_xlim(-lim, lim), a1.set_ylim(-lim, lim), a1.set_aspect("equal")
    a1.axhline(0, color="#999999", lw=0.6), a1.axvline(0, color="#999999", lw=0.6)
    for s, k in enumerate(ex.K):
        c = _KEY_COLORS[s % len(_KEY_COLORS)]
        arrow(a1, (0, 0), tuple(k.tolist()), color=c, lw=2)
        tip = k + 0.12 * k / k.norm()
        a1.text(tip[0].item(), tip[1].item(), f"$k_{s + 1}$: score {ex.scores[s]:.2f}\nweight {ex.weights[s]:.2f}",
                color=c, fontsize=8.5, ha="left" if k[0] > 0 else "right", va="top" if k[1] < 0.5 else "bottom")
    arrow(a1, (0, 0), tuple(ex.q.tolist()), color="state", lw=2.5)
    a1.text(ex.q[0].item() - 0.1, ex.q[1].item() + 0.1, "$q$", color=COLORS["state"], fontsize=13, ha="right",
            va="bottom")
    a1.set_title("query and keys: weight = softmax($q\\cdot k_s/\\sqrt{d}$)", fontsize=10)
    a1.set_xticks([]), a1.set_yticks([])
    V = ex.V
    a2.add_patch(Polygon(V.tolist(), closed=True, facecolor=COLORS["neutral"], edgecolor="none", alpha=0.6))
    for s, v in enumerate(V):
        c = _KEY_COLORS[s % len(_KEY_COLORS)]
        a2.plot([v[0], ex.output[0]], [v[1], ex.output[1]], color=c, lw=0.5 + 8 * ex.weights[s].item(), alpha=0.7)
        a2.scatter(*v.tolist(), s=70, color=c, zorder=3, edgecolor="black")
        a2.text(v[0].item(), v[1].item() + 0.22, f"$v_{s + 1}$ (weight {ex.weights[s]:.2f})", color=c, fontsize=9,
                ha="center")
    a2.scatter(*ex.output.tolist(), marker="*", s=260, color=COLORS["state"], edgecolor="black", zorder=4)
    a2.text(ex.output[0].item() + 0.1, ex.output[1].item() - 0.25,
            f"output $o = \\sum_s a_s v_s$ = ({ex.output[0]:.2f}, {ex.output[1]:.2f})", fontsize=9,
            color=COLORS["state"], va="top")
    pad = 0.8
    a2.set_xlim(V[:, 0].min().item() - pad, V[:, 0].max().item() + pad)
    a2.set_ylim(V[:, 1].min().item() - pad, V[:, 1].max().item() + pad)
    a2.set_aspect("equal")
    a2.set_xticks([]), a2.set_yticks([])
    a2.set_title("values and the output: a weighted average", fontsize=10)
    fig.tight_layout()
    return fig


@checked
def multi_head_shapes(B: PosInt = 2, T: PosInt = 5, C: PosInt = 16, num_heads: PosInt = 4
                      ) -> dict[str, tuple[int, ...]]:
    """The shapes of the split and merge in :class:`utils.attention.MultiHeadAttention`, obtained by
    doing the reshapes on a zero tensor: ``q`` (B, T, C) -> ``split`` (B, T, nh, hs) ->
    ``heads`` (B, nh, T, hs) -> ``weights`` (B, nh, T, T) -> ``merged`` (B, T, C)."""
    check(C % num_heads == 0, "C", f"divisible by num_heads={num_heads}", C)
    hs = C // num_heads
    q = torch.zeros(B, T, C)
    split = q.view(B, T, num_heads, hs)  # (B, T, nh, hs)
    heads = split.transpose(1, 2)  # (B, nh, T, hs)
    weights = heads @ heads.transpose(-2, -1)  # (B, nh, T, T)
    merged = (weights @ heads).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
    return {"q": tuple(q.shape), "split": tuple(split.shape), "heads": tuple(heads.shape),
            "weights": tuple(weights.shape), "merged": tuple(merged.shape)}


def _grid(ax, x0, y0, rows, cols, s, colors, alpha=0.75):
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(Rectangle((x0 + c * s, y0 - (r + 1) * s), s, s, facecolor=colors[c], edgecolor="white",
                                   lw=0.4, alpha=alpha))
    ax.add_patch(Rectangle((x0, y0 - rows * s), cols * s, rows * s, facecolor="none", edgecolor="black", lw=0.8))


@checked
def draw_multi_head(B: PosInt = 2, T: PosInt = 5, C: PosInt = 16, num_heads: PosInt = 4) -> plt.Figure:
    """Split, attend, merge: ``(B, T, C)`` cut into nh slices of hs = C / nh columns
    (``view``), heads moved in front of T (``transpose``), attention in every head at once,
    then ``transpose`` and ``reshape`` back to ``(B, T, C)`` and the output projection ``W_O``.
    One batch element is drawn; the shapes written are those of :func:`multi_head_shapes`."""
    sh = multi_head_shapes(B, T, C, num_heads)
    nh, hs = num_heads, C // num_heads
    head_colors = [_KEY_COLORS[h % len(_KEY_COLORS)] for h in range(nh)]
    col_colors = [head_colors[c // hs] for c in range(C)]
    s = min(0.3, 4.8 / C)
    gap, d = 0.2, 0.22  # gap between split slices; offset between stacked heads
    row = T * s + 2.0
    fig, ax = new_axes(10.0, 5.2, xlim=(-0.5, 17.3), ylim=(-0.9, 2 * row + 0.6), ax=None,
                       title=f"Multi-head attention: split and merge (B = {B}, T = {T}, C = {C}, nh = {nh}, hs = {hs})")
    top = 2 * row - 0.7  # first row: split
    mid = top - T * s / 2
    _grid(ax, 0, top, T, C, s, col_colors)
    label(ax, (C * s / 2, top + 0.3), "queries $q = x W_q^\\top$ (one of $q, k, v$)", fontsize=9)
    label(ax, (C * s / 2, top - T * s - 0.3), f"(B, T, C) = {sh['q']}", fontsize=9)
    x1 = C * s + 1.6
    arrow(ax, (C * s + 0.15, mid), (x1 - 0.15, mid))
    label(ax, (C * s + 0.8, mid + 0.3), ".view", fontsize=8.5)
    for h in range(nh):  # split: (B, T, nh, hs), slices side by side with gaps
        _grid(ax, x1 + h * (hs * s + gap), top, T, hs, s, [head_colors[h]] * hs)
    w1 = nh * (hs * s + gap) - gap
    label(ax, (x1 + w1 / 2, top + 0.3), "cut into nh slices of hs", fontsize=9)
    label(ax, (x1 + w1 / 2, top - T * s - 0.3), f"(B, T, nh, hs) = {sh['split']}", fontsize=9)
    x2 = x1 + w1 + 2.5
    arrow(ax, (x1 + w1 + 0.15, mid), (x2 - 0.15, mid))
    label(ax, (x1 + w1 + 1.25, mid + 0.3), ".transpose(1, 2)", fontsize=8.5)
    for h in reversed(range(nh)):  # heads in front: a stack of nh (T, hs) matrices, head 0 in front
        _grid(ax, x2 + d * h, top + d * h, T, hs, s, [head_colors[h]] * hs, alpha=0.95)
    w2 = hs * s + d * (nh - 1)
    label(ax, (x2 + w2 / 2, top + 0.3 + d * nh), "nh heads, each (T, hs)", fontsize=9)
    label(ax, (x2 + w2 / 2, top - T * s - 0.3), f"(B, nh, T, hs) = {sh['heads']}", fontsize=9)
    top2 = row - 0.9  # second row: attend, merge, mix
    mid2 = top2 - T * s / 2
    for h in reversed(range(nh)):  # per-head attention weights (T, T)
        _grid(ax, 0.8 + d * h, top2 + d * h, T, T, s, [head_colors[h]] * T, alpha=0.55)
    w3 = 0.8 + T * s + d * (nh - 1)
    label(ax, (0.0, top2 + 0.35 + d * nh), "every head at once: softmax$(q k^\\top/\\sqrt{hs})\\,v$",
          fontsize=9, ha="left")
    label(ax, (w3 / 2 + 0.4, top2 - T * s - 0.3), f"weights (B, nh, T, T) = {sh['weights']}", fontsize=9)
    label(ax, (w3 / 2 + 0.4, top2 - T * s - 0.7), f"output (B, nh, T, hs) = {sh['heads']}", fontsize=9)
    x4 = w3 + 2.6
    arrow(ax, (w3 + 0.15, mid2), (x4 - 0.15, mid2))
    label(ax, (w3 + 1.3, mid2 + 0.45), ".transpose(1, 2)\n.reshape(B, T, C)", fontsize=8.5)
    _grid(ax, x4, top2, T, C, s, col_colors)
    label(ax, (x4 + C * s / 2, top2 + 0.3), "heads side by side again", fontsize=9)
    label(ax, (x4 + C * s / 2, top2 - T * s - 0.3), f"(B, T, C) = {sh['merged']}", fontsize=9)
    x5 = x4 + C * s + 1.4
    arrow(ax, (x4 + C * s + 0.15, mid2), (x5 - 0.15, mid2))
    label(ax, (x4 + C * s + 0.7, mid2 + 0.3), "$W_O$", fontsize=10)
    _grid(ax, x5, top2, T, C, s, [COLORS["ffn"]] * C, alpha=0.45)
    label(ax, (x5 + C * s / 2, top2 + 0.3), "heads mixed", fontsize=9)
    label(ax, (x5 + C * s / 2, top2 - T * s - 0.3), f"(B, T, C) = {sh['merged']}", fontsize=9)
    return fig
