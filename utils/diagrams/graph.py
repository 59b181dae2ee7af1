"""The computational graph of a small scalar function, with the values of the forward pass and
the gradients of the backward pass (chapter 3.1).

    u = w x,   z = u + b,   h = tanh(z),   e = h - y,   L = e^2

Forward, every node stores its value. Backward, starting from dL/dL = 1, each edge multiplies the
gradient arriving at its output by the local derivative of its operation (for vectors, the
vector-Jacobian product): dL/de = 2e, dL/dh = dL/de * 1, dL/dz = dL/dh * (1 - h^2), dL/du = dL/dz,
dL/db = dL/dz, dL/dw = dL/du * x, dL/dx = dL/du * w. :func:`graph_example` computes the values
with autograd, and the drawing shows them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from utils._validate import Finite, check, checked
from utils.diagrams._draw import COLORS, arrow, box, label, new_axes

__all__ = ["graph_example", "draw_computational_graph"]

NODES = ("w", "x", "b", "u", "z", "h", "e", "L", "y")  # the graph's nodes, and the target y
# the local derivative on each edge (input -> output), as drawn
EDGES = [("w", "u", r"$\times x$"), ("x", "u", r"$\times w$"), ("u", "z", r"$\times 1$"), ("b", "z", r"$\times 1$"),
         ("z", "h", r"$\times(1-h^2)$"), ("h", "e", r"$\times 1$"), ("e", "L", r"$\times 2e$")]


@checked
def graph_example(x: Finite = 1.5, w: Finite = 0.8, b: Finite = -0.5, y: Finite = 1.0
                  ) -> dict[str, tuple[float, float]]:
    """Forward value and gradient dL/d(node) of every node of the graph, ``{name: (value, grad)}``,
    computed by autograd in float64; ``"y"`` holds the target, a constant (gradient 0, not a node)."""
    leaves = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for k, v in
              (("x", x), ("w", w), ("b", b))}
    nodes = dict(leaves)
    nodes["u"] = leaves["w"] * leaves["x"]
    nodes["z"] = nodes["u"] + leaves["b"]
    nodes["h"] = torch.tanh(nodes["z"])
    nodes["e"] = nodes["h"] - y
    nodes["L"] = nodes["e"] ** 2
    for name in ("u", "z", "h", "e", "L"):
        nodes[name].retain_grad()
    nodes["L"].backward()
    out = {k: (t.item(), t.grad.item()) for k, t in nodes.items()}
    out["y"] = (float(y), 0.0)  # the target: a constant, drawn as a label
    return out


@checked
def draw_computational_graph(values: dict[str, tuple[float, float]] | None = None, ax: plt.Axes | None = None
                             ) -> plt.Figure:
    """The graph of ``L = (tanh(w x + b) - y)^2`` with the forward value (black, left to right) and
    the gradient dL/d(node) (orange, right to left) in every node, and each edge's local
    derivative. ``values`` defaults to :func:`graph_example`."""
    check(values is None or set(values) >= set(NODES), "values", f"a dict like graph_example()'s, with keys {NODES}",
          sorted(values or ()))
    v = values or graph_example()
    fig, ax = new_axes(11.0, 4.0, xlim=(-0.6, 20.0), ylim=(-1.5, 5.6), ax=ax,
                       title="Computational graph of $L = (\\tanh(w x + b) - y)^2$: forward values, backward gradients")
    pos = {"w": (0.9, 4.0), "x": (0.9, 2.2), "b": (0.9, 0.2), "u": (4.7, 3.1), "z": (8.0, 1.7), "h": (11.5, 1.7),
           "e": (15.0, 1.7), "L": (18.5, 1.7)}
    ops = {"u": "×", "z": "+", "h": "tanh", "e": "− y", "L": "( )²"}
    for name, (x, y) in pos.items():
        value, grad = v[name]
        box(ax, (x, y), 2.5, 1.1, "", color="ffn" if name in ops else "neutral", alpha=0.25)
        label(ax, (x, y + 0.22), f"${name}$ = {value:.3f}", fontsize=9)
        label(ax, (x, y - 0.24), f"$\\partial L/\\partial {name}$ = {grad:.3f}", fontsize=8, color="state")
        if name in ops:
            label(ax, (x, y + 0.8), ops[name], fontsize=9, color="#555555")
    for a, b, local in EDGES:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        start, end = (xa + 1.25, ya), (xb - 1.25, yb)
        arrow(ax, start, end, lw=1.2)
        arrow(ax, (end[0], end[1] - 0.28), (start[0], start[1] - 0.28), color="state", lw=1.0, ls="--")
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        label(ax, (mx, my + 0.28), local, fontsize=8.5, color="state",
              bbox=dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.8))
    label(ax, (15.0, 3.2), f"target $y$ = {v['y'][0]:g} (a constant)", fontsize=8.5)
    label(ax, (9.7, -1.0), "black: forward pass, values from left to right.\n"
          "orange, dashed: backward pass, gradients $\\partial L/\\partial\\cdot$ from right to left: "
          "each edge multiplies by its local derivative (orange label)", fontsize=8.5)
    return fig
