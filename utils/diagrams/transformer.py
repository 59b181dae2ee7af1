"""Transformer diagrams for chapter 3.4: the block in post-LN and pre-LN order, and the wiring of
the encoder-decoder, as :mod:`utils.transformer` and :mod:`utils.encoder_decoder` implement them.

    post-LN (2017):  x = LN(x + MHA(x));   x = LN(x + FFN(x))
    pre-LN (GPT-2):  x = x + MHA(LN(x));   x = x + FFN(LN(x))
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from utils._validate import checked
from utils.diagrams._draw import COLORS, arrow, box, label, op, path_arrow

__all__ = ["draw_transformer_block", "draw_encoder_decoder"]

_W, _H = 3.1, 0.6  # box size


def _post_ln(ax, x0: float) -> None:
    """Post-LN column centred at ``x0``: returns nothing, draws bottom (y=0) to top."""
    arrow(ax, (x0, -0.2), (x0, 1.0 - _H / 2), color="state", lw=2)
    box(ax, (x0, 1.0), _W, _H, "multi-head attention", color="attn", fontsize=9)
    arrow(ax, (x0, 1.0 + _H / 2), (x0, 2.0 - 0.22))
    op(ax, (x0, 2.0), "+")
    path_arrow(ax, [(x0, 0.2), (x0 + 2.1, 0.2), (x0 + 2.1, 2.0), (x0 + 0.22, 2.0)], color="state", lw=2)
    arrow(ax, (x0, 2.22), (x0, 2.8 - _H / 2))
    box(ax, (x0, 2.8), _W, _H, "LayerNorm", color="norm", fontsize=9)
    arrow(ax, (x0, 2.8 + _H / 2), (x0, 3.8 - _H / 2), color="state", lw=2)
    box(ax, (x0, 3.8), _W, _H, "feed-forward", color="ffn", fontsize=9, text_color="white")
    arrow(ax, (x0, 3.8 + _H / 2), (x0, 4.8 - 0.22))
    op(ax, (x0, 4.8), "+")
    path_arrow(ax, [(x0, 3.25), (x0 + 2.1, 3.25), (x0 + 2.1, 4.8), (x0 + 0.22, 4.8)], color="state", lw=2)
    arrow(ax, (x0, 5.02), (x0, 5.6 - _H / 2))
    box(ax, (x0, 5.6), _W, _H, "LayerNorm", color="norm", fontsize=9)
    arrow(ax, (x0, 5.6 + _H / 2), (x0, 6.5), color="state", lw=2)


def _pre_ln(ax, x0: float) -> None:
    arrow(ax, (x0, -0.2), (x0, 0.8 - _H / 2), color="state", lw=2)
    box(ax, (x0, 0.8), _W, _H, "LayerNorm", color="norm", fontsize=9)
    arrow(ax, (x0, 0.8 + _H / 2), (x0, 1.7 - _H / 2))
    box(ax, (x0, 1.7), _W, _H, "multi-head attention", color="attn", fontsize=9)
    arrow(ax, (x0, 1.7 + _H / 2), (x0, 2.7 - 0.22))
    op(ax, (x0, 2.7), "+")
    path_arrow(ax, [(x0, 0.2), (x0 + 2.1, 0.2), (x0 + 2.1, 2.7), (x0 + 0.22, 2.7)], color="state", lw=2)
    arrow(ax, (x0, 2.92), (x0, 3.7 - _H / 2))
    box(ax, (x0, 3.7), _W, _H, "LayerNorm", color="norm", fontsize=9)
    arrow(ax, (x0, 3.7 + _H / 2), (x0, 4.6 - _H / 2))
    box(ax, (x0, 4.6), _W, _H, "feed-forward", color="ffn", fontsize=9, text_color="white")
    arrow(ax, (x0, 4.6 + _H / 2), (x0, 5.6 - 0.22))
    op(ax, (x0, 5.6), "+")
    path_arrow(ax, [(x0, 3.15), (x0 + 2.1, 3.15), (x0 + 2.1, 5.6), (x0 + 0.22, 5.6)], color="state", lw=2)
    arrow(ax, (x0, 5.82), (x0, 6.5), color="state", lw=2)


@checked
def draw_transformer_block(ax: plt.Axes | None = None) -> plt.Figure:
    """Post-LN (left) and pre-LN (right) Transformer blocks side by side; the residual stream is
    orange. In pre-LN it runs from input to output through additions only."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.4, 5.2))
    else:
        fig = ax.figure
    ax.set_xlim(-1.0, 10.6), ax.set_ylim(-1.3, 7.5), ax.set_aspect("equal"), ax.axis("off")
    _post_ln(ax, 1.4)
    _pre_ln(ax, 7.0)
    for x0, title, f1, f2 in ((1.4, "post-LN (2017 paper)", r"$x \leftarrow \mathrm{LN}(x + \mathrm{MHA}(x))$",
                               r"$x \leftarrow \mathrm{LN}(x + \mathrm{FFN}(x))$"),
                              (7.0, "pre-LN (GPT-2 onward)", r"$x \leftarrow x + \mathrm{MHA}(\mathrm{LN}(x))$",
                               r"$x \leftarrow x + \mathrm{FFN}(\mathrm{LN}(x))$")):
        label(ax, (x0 + 0.4, 7.2), title, fontsize=11)
        label(ax, (x0 - 0.5, -0.55), "$x$: (B, T, C)", fontsize=9)
        label(ax, (x0 + 0.4, 6.75), "(B, T, C)", fontsize=9)
        label(ax, (x0 + 0.4, -0.95), f1 + "\n" + f2, fontsize=9, va="top")
    label(ax, (4.6, 6.2), "orange: the residual\nstream and its\nskip connections", fontsize=8, color="state")
    return fig


def _stack_frame(ax, x0: float, y0: float, w: float, h: float, text: str, *, right: bool = False) -> None:
    ax.add_patch(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0.05,rounding_size=0.15", facecolor="#F7F7F7",
                                edgecolor="#777777", lw=1.0, ls="--", zorder=0))
    label(ax, (x0 + w + 0.15 if right else x0 - 0.15, y0 + h / 2), text, fontsize=10, ha="left" if right else "right")


@checked
def draw_encoder_decoder(ax: plt.Axes | None = None) -> plt.Figure:
    """The encoder-decoder Transformer: the encoder (bidirectional self-attention) reads the
    source; every decoder block has causal self-attention, then cross-attention whose queries
    come from the decoder and whose keys and values are the encoder's output, then a
    feed-forward network. Each sublayer sits in a residual connection with a LayerNorm."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(9.0, 6.2))
    else:
        fig = ax.figure
    ax.set_xlim(-1.4, 11.8), ax.set_ylim(-1.6, 9.4), ax.set_aspect("equal"), ax.axis("off")
    ex, dx = 1.8, 8.2  # encoder and decoder columns
    # encoder
    box(ax, (ex, -0.5), 3.2, 0.6, "source tokens + positions", fontsize=9)
    _stack_frame(ax, ex - 2.0, 0.3, 4.0, 3.1, "N ×")
    arrow(ax, (ex, -0.2), (ex, 1.1 - 0.35), color="state", lw=2)
    box(ax, (ex, 1.1), 3.6, 0.7, "self-attention\n(every token sees all)", color="attn", fontsize=8.5)
    arrow(ax, (ex, 1.45), (ex, 2.5 - 0.35), color="state", lw=2)
    box(ax, (ex, 2.5), 3.6, 0.7, "feed-forward", color="ffn", fontsize=9, text_color="white")
    arrow(ax, (ex, 2.85), (ex, 4.2 - 0.3), color="state", lw=2)
    box(ax, (ex, 4.2), 3.0, 0.6, "memory (B, S, C)", color="state", fontsize=9, alpha=0.5)
    label(ax, (ex, 5.0), "ENCODER", fontsize=11)
    # decoder
    box(ax, (dx, -0.5), 3.6, 0.6, "target shifted right + positions", fontsize=9)
    label(ax, (dx, -1.15), "[BOS, $y_0$, $y_1$, ...]  (teacher forcing)", fontsize=8.5)
    _stack_frame(ax, dx - 2.0, 0.3, 4.0, 4.6, "N ×", right=True)
    arrow(ax, (dx, -0.2), (dx, 1.1 - 0.35), color="state", lw=2)
    box(ax, (dx, 1.1), 3.6, 0.7, "masked self-attention\n(token $t$ sees $\\leq t$)", color="attn", fontsize=8.5)
    arrow(ax, (dx, 1.45), (dx, 2.6 - 0.35), color="state", lw=2)
    box(ax, (dx, 2.6), 3.6, 0.7, "cross-attention\nQ: decoder; K, V: memory", color="attn", fontsize=8)
    arrow(ax, (dx, 2.95), (dx, 4.0 - 0.35), color="state", lw=2)
    box(ax, (dx, 4.0), 3.6, 0.7, "feed-forward", color="ffn", fontsize=9, text_color="white")
    arrow(ax, (dx, 4.35), (dx, 5.8 - 0.3), color="state", lw=2)
    box(ax, (dx, 5.8), 3.0, 0.6, "linear + softmax", color="linear", fontsize=9)
    arrow(ax, (dx, 6.1), (dx, 6.8))
    label(ax, (dx, 7.15), "next-token probabilities (B, T, V)", fontsize=9)
    label(ax, (dx, 7.9), "DECODER", fontsize=11)
    # memory -> every decoder block's cross-attention (keys and values)
    path_arrow(ax, [(ex + 1.5, 4.2), (5.0, 4.2), (5.0, 2.6), (dx - 1.8, 2.6)], color="state", lw=2)
    label(ax, (5.0, 4.5), "keys and values", fontsize=8.5, color="state")
    label(ax, (5.0, 8.9), "Each sublayer: $x \\leftarrow x + f(\\mathrm{LN}(x))$ (pre-LN)", fontsize=9.5)
    return fig
