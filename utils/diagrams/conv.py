"""Convolution diagrams for chapter 3.2: a multi-channel convolution, im2col with real numbers,
and the growth of the receptive field through a stack of layers.

:func:`receptive_field` computes what :func:`draw_receptive_field` shows, with the recursion
``r_l = r_{l-1} + (k_l - 1) j_{l-1}``, ``j_l = j_{l-1} s_l`` (``r`` the receptive field, ``j`` the
distance in input pixels between neighbouring units, ``k`` kernel size, ``s`` stride); tested
against autograd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from utils._validate import Float, IntIn, NonNegInt, OneOf, PosInt, Tensor, check, checked
from utils.diagrams._draw import COLORS, arrow, cells, label, new_axes, op

__all__ = ["draw_multichannel_conv", "im2col_example", "draw_im2col", "Layer1d", "receptive_field",
           "draw_receptive_field"]

_CHANNEL_COLORS = ["#56B4E9", "#009E73", "#E69F00", "#CC79A7"]


@checked
def draw_multichannel_conv(c_in: IntIn(1, 4) = 3, c_out: IntIn(1, 3) = 2, size: IntIn(3, 7) = 5, k: IntIn(2, 6) = 3,
                           ax: plt.Axes | None = None) -> plt.Figure:
    """``y[o, i, j] = b[o] + sum_c sum_{m,n} x[c, i+m, j+n] w[o, c, m, n]``: one K x K slice of each
    kernel per input channel, their products summed over the channels, one kernel per output
    channel. Input ``(C_in, H, W)``, weights ``(C_out, C_in, K, K)``, output ``(C_out, H-K+1, W-K+1)``."""
    check(k < size, "k", f"smaller than size={size}", k)
    out = size - k + 1
    s, ks = 0.36, 0.32
    in_h = size * s + 0.45
    height = max(c_in * in_h, c_out * 2.4) + 0.9
    fig, ax = new_axes(9.0, 0.62 * height + 1.0, xlim=(-0.9, 14.6), ylim=(-0.7, height + 0.5), ax=ax,
                       title=f"Convolution with $C_{{in}}$ = {c_in} input and $C_{{out}}$ = {c_out} output channels")
    top = height - 0.3
    rf = {(r, c) for r in range(k) for c in range(k)}
    for c in range(c_in):  # input channels, the receptive field of output (0, 0) highlighted
        y0 = top - c * in_h
        cells(ax, (0.0, y0), size, size, s, color=_CHANNEL_COLORS[c], highlight=rf, highlight_color="state", alpha=0.7)
        label(ax, (-0.15, y0 - size * s / 2), f"$x[{c}]$", fontsize=9, ha="right")
    label(ax, (size * s / 2, -0.45), f"input $x$: ({c_in}, {size}, {size})", fontsize=9)
    row_h = (height - 0.6) / c_out
    for o in range(c_out):
        yc = top - (o + 0.5) * row_h + 0.2  # centre line of output channel o
        for c in range(c_in):
            x0 = 3.2 + c * (k * ks + 0.3)
            cells(ax, (x0, yc + k * ks / 2), k, k, ks, color=_CHANNEL_COLORS[c], alpha=0.75)
            arrow(ax, (x0 + k * ks / 2, yc - k * ks / 2 - 0.05), (9.0, yc - 0.05), lw=0.9, color=_CHANNEL_COLORS[c])
        label(ax, (3.2 + c_in * (k * ks + 0.3) / 2 - 0.15, yc + k * ks / 2 + 0.3),
              f"kernel $w[{o}]$: ({c_in}, {k}, {k})", fontsize=9)
        op(ax, (9.25, yc), "Σ", r=0.25)
        label(ax, (9.25, yc - 0.55), f"$+\\,b[{o}]$", fontsize=9)
        arrow(ax, (9.5, yc), (10.6, yc))
        cells(ax, (10.75, yc + out * s / 2), out, out, s, color=COLORS["neutral"], highlight={(0, 0)})
        label(ax, (10.75 + out * s + 0.15, yc), f"$y[{o}]$", fontsize=10, ha="left")
    label(ax, (11.6, -0.45), f"output $y$: ({c_out}, {out}, {out})", fontsize=9)
    label(ax, (6.6, height + 0.2), r"$y[o,i,j] = b[o] + \sum_{c}\sum_{m,n} x[c,\,i+m,\,j+n]\; w[o,c,m,n]$",
          fontsize=10)
    return fig


@dataclass
class Im2colExample:
    """The numbers of :func:`draw_im2col`: input ``x (C_in, H, W)``, weights ``w (C_out, C_in, K, K)``,
    columns ``cols (C_in K K, L)`` (``F.unfold``), product ``out (C_out, L)`` and its reshape
    ``y (C_out, H_out, W_out)`` (equal to ``F.conv2d``)."""

    x: torch.Tensor
    w: torch.Tensor
    cols: torch.Tensor
    out: torch.Tensor
    y: torch.Tensor


@checked
def im2col_example(x: Float[Tensor, "C_in H W"] | None = None,
                   w: Float[Tensor, "C_out C_in K_h K_w"] | None = None) -> Im2colExample:
    """Unfold ``x`` into columns, multiply by the flattened kernels, and check the result against
    ``F.conv2d`` (raises ``AssertionError`` otherwise). Defaults: a 2-channel 3x3 input, two 2x2 kernels."""
    if x is None:
        x = torch.tensor([[[1, 2, 0], [0, 1, 3], [2, 1, 1]], [[0, 1, 1], [2, 0, 1], [1, 3, 0]]],
                         dtype=torch.float64 if w is None else w.dtype)
    if w is None:
        w = torch.tensor([[[[1, 0], [0, -1]], [[0, 1], [1, 0]]], [[[1, 1], [1, 1]], [[0, 0], [0, 1]]]], dtype=x.dtype)
    check(w.shape[1] == x.shape[0] and w.shape[2] <= x.shape[1] and w.shape[3] <= x.shape[2], "w",
          f"(C_out, C_in, K_h, K_w) with C_in = {x.shape[0]} and kernels no larger than x ({x.shape[1]}x{x.shape[2]})",
          tuple(w.shape))
    cols = F.unfold(x[None], w.shape[-2:])[0]  # (C_in*K*K, L)
    out = w.reshape(w.shape[0], -1) @ cols  # (C_out, L)
    H_out, W_out = x.shape[1] - w.shape[2] + 1, x.shape[2] - w.shape[3] + 1
    y = out.reshape(w.shape[0], H_out, W_out)
    assert torch.allclose(y, F.conv2d(x[None], w)[0]), "im2col disagrees with F.conv2d"
    return Im2colExample(x, w, cols, out, y)


def _matrix(ax, xy, m: torch.Tensor, s: float, col_colors=None, row_colors=None) -> None:
    R, C = m.shape
    for r in range(R):
        for c in range(C):
            face = col_colors[c] if col_colors else (row_colors[r] if row_colors else COLORS["neutral"])
            ax.add_patch(Rectangle((xy[0] + c * s, xy[1] - (r + 1) * s), s, s, facecolor=face, edgecolor="black",
                                   lw=0.6, alpha=0.55, zorder=2))
            ax.text(xy[0] + (c + 0.5) * s, xy[1] - (r + 0.5) * s, f"{m[r, c].item():g}", ha="center", va="center",
                    fontsize=8, zorder=3)


@checked
def draw_im2col(example: Im2colExample | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """im2col with the numbers of :func:`im2col_example`: each receptive field (one colour per output
    position) becomes a column; the flattened kernels ``(C_out, C_in K K)`` times the columns
    ``(C_in K K, L)`` give ``(C_out, L)``, reshaped to the output maps."""
    ex = example or im2col_example()
    C_in, H, W = ex.x.shape
    C_out, _, K, _ = ex.w.shape
    L = ex.cols.shape[1]
    s = 0.42
    pos_colors = (_CHANNEL_COLORS + ["#F0E442", "#D55E00", "#0072B2"] * 8)[:L]
    rows = ex.cols.shape[0]
    height = max(rows * s, C_in * (H * s + 0.5)) + 1.6
    fig, ax = new_axes(10.5, max(3.4, 0.95 * height), xlim=(-0.3, 18.0), ylim=(-0.9, height), ax=ax,
                       title="im2col: a convolution as one matrix product")
    top = height - 1.0
    W_out = W - K + 1
    for c in range(C_in):  # input channels; the first receptive field outlined
        y0 = top - c * (H * s + 0.5)
        cells(ax, (0, y0), H, W, s, values=ex.x[c].tolist(), fontsize=8, highlight={(r, q) for r in range(K) for q in range(K)},
              highlight_color=pos_colors[0], alpha=0.6)
        label(ax, (W * s + 0.1, y0 - H * s / 2), f"$x[{c}]$", fontsize=9, ha="left")
    label(ax, (W * s / 2 + 0.2, -0.55), f"input ({C_in}, {H}, {W})", fontsize=9)
    x_w = 2.9
    _matrix(ax, (x_w, top - 0.3), ex.w.reshape(C_out, -1), s)
    for o in range(C_out):
        label(ax, (x_w - 0.08, top - 0.3 - (o + 0.5) * s), f"$w[{o}]$", fontsize=8, ha="right")
    label(ax, (x_w + rows * s / 2, top - 0.3 - C_out * s - 0.35), f"kernels flattened\n({C_out}, {rows})", fontsize=9,
          va="top")
    x_c = x_w + rows * s + 0.7
    label(ax, (x_c - 0.35, top - 0.3 - C_out * s / 2), "@", fontsize=13)
    _matrix(ax, (x_c, top), ex.cols, s, col_colors=pos_colors)
    for c in range(C_in):  # which rows come from which channel
        xb = x_c + L * s + 0.12
        ax.plot([xb] * 2, [top - c * K * K * s - 0.05, top - (c + 1) * K * K * s + 0.05], color="black", lw=1.2)
        label(ax, (xb + 0.08, top - (c + 0.5) * K * K * s), f"from\n$x[{c}]$", fontsize=7, ha="left")
    label(ax, (x_c + L * s / 2, top - rows * s - 0.35), f"columns ({rows}, {L})\none per output position",
          fontsize=9, va="top")
    x_o = x_c + L * s + 1.5
    label(ax, (x_o - 0.35, top - 0.3 - C_out * s / 2), "=", fontsize=13)
    _matrix(ax, (x_o, top - 0.3), ex.out, s, col_colors=pos_colors)
    label(ax, (x_o + L * s / 2, top - 0.3 - C_out * s - 0.35), f"({C_out}, {L})", fontsize=9, va="top")
    x_r = x_o + L * s + 0.9
    arrow(ax, (x_o + L * s + 0.1, top - 0.3 - C_out * s / 2), (x_r - 0.1, top - 0.3 - C_out * s / 2))
    label(ax, (x_o + L * s + 0.5, top - 0.3 - C_out * s / 2 + 0.3), "reshape", fontsize=8)
    for o in range(C_out):
        y0 = top - o * ((H - K + 1) * s + 0.5)
        for i in range(H - K + 1):
            for j in range(W_out):
                ax.add_patch(Rectangle((x_r + j * s, y0 - (i + 1) * s), s, s, facecolor=pos_colors[i * W_out + j],
                                       edgecolor="black", lw=0.6, alpha=0.55, zorder=2))
                ax.text(x_r + (j + 0.5) * s, y0 - (i + 0.5) * s, f"{ex.y[o, i, j].item():g}", ha="center",
                        va="center", fontsize=8, zorder=3)
        label(ax, (x_r + W_out * s + 0.1, y0 - (H - K + 1) * s / 2), f"$y[{o}]$", fontsize=9, ha="left")
    return fig


@checked
@dataclass(frozen=True)
class Layer1d:
    """One layer of a 1-D stack: ``kind`` ("conv" or "pool", for the label), kernel ``k``,
    stride ``s``, zero padding ``p``."""

    kind: OneOf("conv", "pool")
    k: PosInt
    s: PosInt = 1
    p: NonNegInt = 0


@checked
def receptive_field(layers: Sequence[Layer1d]) -> list[tuple[int, int]]:
    """``(r_l, j_l)`` after each layer: receptive field in input pixels and the jump (input pixels
    between neighbouring units), by ``r_l = r_{l-1} + (k_l - 1) j_{l-1}``, ``j_l = j_{l-1} s_l``."""
    r, j, out = 1, 1, []
    for layer in layers:
        r, j = r + (layer.k - 1) * j, j * layer.s
        out.append((r, j))
    return out


def _inputs_of(units: set[int], layer: Layer1d, n_prev: int) -> set[int]:
    return {i * layer.s - layer.p + m for i in units for m in range(layer.k) if 0 <= i * layer.s - layer.p + m < n_prev}


DEFAULT_STACKS = {
    "three 3-wide convolutions (stride 1, padding 1)": (15, [Layer1d("conv", 3, 1, 1)] * 3),
    "conv 3, pool 2, conv 3, pool 2 (the shape of DigitsCNN)": (16, [Layer1d("conv", 3, 1, 1), Layer1d("pool", 2, 2),
                                                                     Layer1d("conv", 3, 1, 1), Layer1d("pool", 2, 2)]),
}


@checked
def draw_receptive_field(stacks: dict[str, tuple[PosInt, Sequence[Layer1d]]] | None = None) -> plt.Figure:
    """One panel per stack ``{title: (input size, layers)}``, 1-D: each row a layer, each square a
    unit drawn as wide as its jump; the units that feed the middle unit of the top layer are
    coloured, down to the input pixels of its receptive field (``r`` per layer on the right)."""
    stacks = stacks or DEFAULT_STACKS
    fig, axes = plt.subplots(len(stacks), 1, figsize=(9.0, 0.5 * len(stacks) + 0.36 * sum(len(v[1]) + 1 for v in stacks.values())),
                             squeeze=False)
    for ax, (title, (n_in, layers)) in zip(axes[:, 0], stacks.items()):
        sizes, n = [n_in], n_in
        for layer in layers:
            n = (n + 2 * layer.p - layer.k) // layer.s + 1
            if n < 1:
                raise ValueError(f"the stack {title!r} shrinks the input of {n_in} to nothing")
            sizes.append(n)
        rf = receptive_field(layers)
        live = [set() for _ in sizes]  # units feeding the chosen top unit
        live[-1] = {(sizes[-1] - 1) // 2}
        for l in range(len(layers), 0, -1):
            live[l - 1] = _inputs_of(live[l], layers[l - 1], sizes[l - 1])
        start, jump = 0.0, 1.0  # centre of unit 0 and spacing, in input pixels
        for l, n in enumerate(sizes):
            if l > 0:
                layer = layers[l - 1]
                start, jump = start + ((layer.k - 1) / 2 - layer.p) * jump, jump * layer.s
            for i in range(n):
                c = start + i * jump
                face = COLORS["state"] if i in live[l] else COLORS["neutral"]
                ax.add_patch(Rectangle((c - 0.45 * jump, l - 0.35), 0.9 * jump, 0.7, facecolor=face,
                                       edgecolor="black", lw=0.6, alpha=0.8))
            name = "input" if l == 0 else f"{layers[l - 1].kind} {layers[l - 1].k} (stride {layers[l - 1].s})"
            ax.text(-1.2, l, name, ha="right", va="center", fontsize=8)
            if l > 0:
                ax.text(n_in + 0.3, l, f"r = {rf[l - 1][0]} pixels", ha="left", va="center", fontsize=8)
        ax.set_xlim(-7.5, n_in + 3.5)
        ax.set_ylim(-0.6, len(sizes) - 0.4)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
