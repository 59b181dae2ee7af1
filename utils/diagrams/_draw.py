"""Drawing primitives shared by the diagrams: boxes, operator circles, arrows and tensor blocks.

Every diagram draws on a matplotlib axes in data coordinates with the axis hidden; sizes are in
those units. Colours come from the book palette (:data:`utils.plotting.BOOK_COLORS`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle


__all__ = ["COLORS", "new_axes", "box", "op", "arrow", "path_arrow", "label", "cells"]

# Roles, each one colour of the book palette (colour-blind safe).
COLORS = {
    "gate": "#E69F00",  # sigmoid gates
    "tanh": "#CC79A7",  # tanh / candidate
    "linear": "#56B4E9",  # learned linear maps
    "norm": "#F0E442",  # normalisation layers
    "attn": "#009E73",  # attention
    "ffn": "#0072B2",  # feed-forward networks
    "state": "#D55E00",  # states and residual streams
    "neutral": "#DDDDDD",
    "text": "#000000",
}


def new_axes(width: float, height: float, *, xlim: tuple[float, float], ylim: tuple[float, float],
             ax: plt.Axes | None = None, title: str | None = None) -> tuple[plt.Figure, plt.Axes]:
    """A figure of ``width`` x ``height`` inches (or the given ``ax``) with equal, hidden axes."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(width, height))
    else:
        fig = ax.figure
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return fig, ax


def box(ax: plt.Axes, xy: tuple[float, float], w: float, h: float, text: str = "", *, color: str = "neutral",
        fontsize: float = 9, alpha: float = 0.85, rounding: float = 0.08, text_color: str = "black") -> tuple[float, float]:
    """A rounded box centred at ``xy`` with ``text``; returns the centre."""
    x, y = xy
    face = COLORS.get(color, color)
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={rounding}",
                                facecolor=face, edgecolor="black", lw=1.0, alpha=alpha, zorder=2))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3, color=text_color)
    return xy


def op(ax: plt.Axes, xy: tuple[float, float], symbol: str, *, r: float = 0.22, fontsize: float = 11,
       color: str = "white") -> tuple[float, float]:
    """An operator circle (``+``, ``×``, ``1-``) centred at ``xy``."""
    ax.add_patch(Circle(xy, r, facecolor=COLORS.get(color, color), edgecolor="black", lw=1.0, zorder=4))
    ax.text(*xy, symbol, ha="center", va="center", fontsize=fontsize, zorder=5)
    return xy


def arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], *, color: str = "black",
          lw: float = 1.2, style: str = "-|>", shrink: float = 0.0, ls: str = "-", rad: float = 0.0,
          zorder: int = 1) -> None:
    """A straight (or, with ``rad``, curved) arrow from ``start`` to ``end``."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=COLORS.get(color, color),
                                 lw=lw, linestyle=ls, shrinkA=shrink, shrinkB=shrink,
                                 connectionstyle=f"arc3,rad={rad}", zorder=zorder))


def path_arrow(ax: plt.Axes, points: list[tuple[float, float]], *, color: str = "black", lw: float = 1.2,
               ls: str = "-", head: bool = True, zorder: int = 1) -> None:
    """A polyline through ``points`` with an arrow head on its last segment (wiring diagrams)."""
    if len(points) < 2:
        raise ValueError(f"points must hold at least 2 (x, y) pairs, got {len(points)}")
    c = COLORS.get(color, color)
    body = points[:-1] if head else points
    if len(body) >= 2:
        xs, ys = zip(*body)
        ax.plot(xs, ys, color=c, lw=lw, ls=ls, zorder=zorder, solid_capstyle="round")
    if head:
        arrow(ax, points[-2], points[-1], color=color, lw=lw, ls=ls, zorder=zorder)


def label(ax: plt.Axes, xy: tuple[float, float], text: str, *, fontsize: float = 9, ha: str = "center",
          va: str = "center", color: str = "black", **kw) -> None:
    """Plain text at ``xy`` (math in ``$...$`` is rendered by matplotlib's mathtext)."""
    ax.text(*xy, text, ha=ha, va=va, fontsize=fontsize, color=COLORS.get(color, color), zorder=6, **kw)


def cells(ax: plt.Axes, xy: tuple[float, float], rows: int, cols: int, size: float, *, color: str = "neutral",
          values=None, fontsize: float = 7, highlight: set[tuple[int, int]] | None = None,
          highlight_color: str = "state", alpha: float = 0.9) -> None:
    """A ``rows`` x ``cols`` grid of square cells with top-left corner ``xy`` (row 0 at the top),
    optionally with a number in each cell and some cells highlighted."""
    x0, y0 = xy
    for r in range(rows):
        for c in range(cols):
            face = COLORS.get(highlight_color) if highlight and (r, c) in highlight else COLORS.get(color, color)
            ax.add_patch(Rectangle((x0 + c * size, y0 - (r + 1) * size), size, size, facecolor=face,
                                   edgecolor="black", lw=0.6, alpha=alpha, zorder=2))
            if values is not None:
                v = values[r][c]
                txt = f"{v:g}" if isinstance(v, float) else str(v)
                ax.text(x0 + (c + 0.5) * size, y0 - (r + 0.5) * size, txt, ha="center", va="center",
                        fontsize=fontsize, zorder=3)
