"""GRU and LSTM cells with their gates wired, drawn from the equations of chapter 3.3.

GRU, the book's convention (:mod:`utils.rnn`; Cho et al., 2014, with the reset gate placed as in
PyTorch, after U):

    z_t = sigma(W_z x_t + U_z h_{t-1} + b_z)                 update gate
    r_t = sigma(W_r x_t + U_r h_{t-1} + b_r)                 reset gate
    h~_t = tanh(W x_t + b_in + r_t * (U h_{t-1} + b_hn))     candidate
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

LSTM (PyTorch's ``nn.LSTM``): i, f, o sigmoid gates, g the tanh candidate,
c_t = f_t * c_{t-1} + i_t * g_t, h_t = o_t * tanh(c_t).
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from utils._validate import checked
from utils.diagrams._draw import arrow, box, label, new_axes, op, path_arrow

__all__ = ["draw_gru_cell", "draw_lstm_cell"]


def _gate_inputs(ax, x_box: float, top: float, *, x_bus: float, h_bus: float) -> None:
    """Two wires into a gate box from below: h_{t-1} (left) and x_t (right)."""
    path_arrow(ax, [(x_box - 0.15, h_bus), (x_box - 0.15, top)], color="state")
    path_arrow(ax, [(x_box + 0.15, x_bus), (x_box + 0.15, top)])


@checked
def draw_gru_cell(ax: plt.Axes | None = None) -> plt.Figure:
    """The GRU cell of the book (update gate z, reset gate r applied after U, see the module
    docstring): black wires carry x_t, orange ones the state. Returns the figure."""
    fig, ax = new_axes(8.6, 5.0, xlim=(-0.3, 12.2), ylim=(-0.2, 7.0), ax=ax,
                       title="GRU cell (book convention: $z_t$ = update gate)")
    S, x_bus, h_bus = 6.0, 0.45, 1.05  # heights of the state line and of the two input buses
    # state line: h_{t-1} -> x (1 - z) -> + -> h_t
    label(ax, (0.0, S + 0.35), "$h_{t-1}$", fontsize=11)
    arrow(ax, (0.0, S), (4.28, S), color="state", lw=2)
    op(ax, (4.5, S), "×")
    arrow(ax, (4.72, S), (8.78, S), color="state", lw=2)
    op(ax, (9.0, S), "+")
    arrow(ax, (9.22, S), (11.9, S), color="state", lw=2)
    label(ax, (11.7, S + 0.35), "$h_t$", fontsize=11)
    label(ax, (6.6, S + 0.55), r"$h_t = (1 - z_t)\odot h_{t-1} + z_t \odot \tilde h_t$", fontsize=10)
    # input buses: h_{t-1} comes down from the state line, x_t from below
    path_arrow(ax, [(0.6, S), (0.6, h_bus), (6.8, h_bus)], color="state", head=False)
    label(ax, (1.4, -0.05), "$x_t$", fontsize=11)
    path_arrow(ax, [(1.1, -0.1), (1.1, x_bus), (9.15, x_bus)], head=False)
    # update gate z
    box(ax, (2.4, 3.3), 1.1, 0.7, r"$\sigma$", color="gate", fontsize=11)
    label(ax, (1.75, 3.3), "update\n$z_t$", fontsize=8, ha="right")
    _gate_inputs(ax, 2.4, 2.95, x_bus=x_bus, h_bus=h_bus)
    path_arrow(ax, [(2.4, 3.65), (2.4, 4.7), (4.28, 4.7)], color="gate", lw=1.5)
    op(ax, (4.5, 4.7), "1−", fontsize=9)
    arrow(ax, (4.5, 4.92), (4.5, S - 0.22), color="gate", lw=1.5)
    path_arrow(ax, [(2.4, 4.7), (2.4, 5.2), (7.5, 5.2), (7.5, 4.3), (8.78, 4.3)], color="gate", lw=1.5)
    # reset gate r
    box(ax, (4.8, 2.2), 1.1, 0.7, r"$\sigma$", color="gate", fontsize=11)
    label(ax, (4.15, 2.2), "reset\n$r_t$", fontsize=8, ha="right")
    _gate_inputs(ax, 4.8, 1.85, x_bus=x_bus, h_bus=h_bus)
    arrow(ax, (5.35, 2.2), (6.58, 2.2), color="gate", lw=1.5)
    # candidate: tanh(W x + b_in + r * (U h + b_hn))
    box(ax, (6.8, 1.45), 1.6, 0.5, "$U h_{t-1} + b_{hn}$", color="linear", fontsize=8)
    arrow(ax, (6.8, h_bus), (6.8, 1.2), color="state")
    op(ax, (6.8, 2.2), "×")
    arrow(ax, (6.8, 1.7), (6.8, 1.98))
    box(ax, (9.0, 1.45), 1.5, 0.5, "$W x_t + b_{in}$", color="linear", fontsize=8)
    arrow(ax, (9.0, x_bus), (9.0, 1.2))
    op(ax, (9.0, 2.45), "+")
    path_arrow(ax, [(7.02, 2.2), (7.6, 2.2), (7.6, 2.45), (8.78, 2.45)])
    arrow(ax, (9.0, 1.7), (9.0, 2.23))
    box(ax, (9.0, 3.3), 1.0, 0.6, "tanh", color="tanh", fontsize=9)
    arrow(ax, (9.0, 2.67), (9.0, 3.0))
    label(ax, (9.75, 3.75), r"$\tilde h_t$", fontsize=11)
    op(ax, (9.0, 4.3), "×")
    arrow(ax, (9.0, 3.6), (9.0, 4.08), color="tanh", lw=1.5)
    arrow(ax, (9.0, 4.52), (9.0, S - 0.22), lw=1.5)
    label(ax, (10.9, 1.5), "reset scales\n$U h_{t-1} + b_{hn}$\n(after $U$,\nas PyTorch)", fontsize=7.5,
          color="#555555")
    return fig


@checked
def draw_lstm_cell(ax: plt.Axes | None = None) -> plt.Figure:
    """The LSTM cell: forget f, input i and output o gates (sigmoid), candidate g (tanh), the cell
    line c_{t-1} -> c_t along the top and the hidden state h_t. Returns the figure."""
    fig, ax = new_axes(8.6, 5.0, xlim=(-0.3, 12.2), ylim=(-0.2, 7.0), ax=ax, title="LSTM cell")
    C, x_bus, h_bus, G = 6.0, 0.45, 1.05, 2.4  # heights: cell line, input buses, gate boxes
    label(ax, (0.0, C + 0.35), "$c_{t-1}$", fontsize=11)
    arrow(ax, (0.0, C), (2.78, C), color="state", lw=2)
    op(ax, (3.0, C), "×")
    arrow(ax, (3.22, C), (6.08, C), color="state", lw=2)
    op(ax, (6.3, C), "+")
    arrow(ax, (6.52, C), (11.9, C), color="state", lw=2)
    label(ax, (11.7, C + 0.35), "$c_t$", fontsize=11)
    label(ax, (6.3, C + 0.6), r"$c_t = f_t\odot c_{t-1} + i_t\odot g_t$", fontsize=10)
    # inputs
    label(ax, (-0.05, h_bus + 0.3), "$h_{t-1}$", fontsize=11)
    path_arrow(ax, [(-0.1, h_bus), (8.2, h_bus)], color="state", head=False)
    label(ax, (1.3, -0.05), "$x_t$", fontsize=11)
    path_arrow(ax, [(1.0, -0.1), (1.0, x_bus), (8.5, x_bus)], head=False)
    # the four gates
    for xc, sym, name, kind in ((3.0, r"$\sigma$", "forget $f_t$", "gate"), (4.6, r"$\sigma$", "input $i_t$", "gate"),
                                (6.0, "tanh", "candidate $g_t$", "tanh"), (8.35, r"$\sigma$", "output $o_t$", "gate")):
        box(ax, (xc, G), 1.0, 0.7, sym, color=kind, fontsize=10)
        label(ax, (xc + 0.1, G + 0.65), name, fontsize=8, ha="left")
        _gate_inputs(ax, xc, G - 0.35, x_bus=x_bus, h_bus=h_bus)
    arrow(ax, (3.0, G + 0.35), (3.0, C - 0.22), color="gate", lw=1.5)  # f -> x on the cell line
    op(ax, (5.3, 4.2), "×")  # i * g
    path_arrow(ax, [(4.6, G + 0.35), (4.6, 4.2), (5.08, 4.2)], color="gate", lw=1.5)
    path_arrow(ax, [(6.0, G + 0.35), (6.0, 4.2), (5.52, 4.2)], color="tanh", lw=1.5)
    path_arrow(ax, [(5.3, 4.42), (5.3, 5.2), (6.3, 5.2), (6.3, C - 0.22)], lw=1.5)
    # h_t = o * tanh(c_t)
    box(ax, (9.7, 4.9), 1.0, 0.55, "tanh", color="tanh", fontsize=9)
    arrow(ax, (9.7, C), (9.7, 5.18), color="state", lw=1.5)
    op(ax, (9.7, 3.6), "×")
    arrow(ax, (9.7, 4.62), (9.7, 3.82), color="tanh", lw=1.5)
    path_arrow(ax, [(8.35, G + 0.35), (8.35, 3.6), (9.48, 3.6)], color="gate", lw=1.5)
    arrow(ax, (9.92, 3.6), (11.9, 3.6), color="state", lw=2)
    label(ax, (11.7, 3.95), "$h_t$", fontsize=11)
    label(ax, (10.9, 2.5), r"$h_t = o_t\odot\tanh(c_t)$", fontsize=10)
    return fig
