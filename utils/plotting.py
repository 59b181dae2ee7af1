"""One visual style for the whole book, and the plots every chapter needs.

:func:`use_book_style` changes matplotlib's settings only when called (the notebooks call
it through :func:`utils.env.setup_notebook`). Every ``plot_*`` function draws on an
``ax`` it is given (or a new one), never mutates its inputs and returns the axes or figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from utils._validate import Duck, Finite, OneOf, PosFloat, PosInt, checked

__all__ = [
    "BOOK_COLORS",
    "use_book_style",
    "plot_learning_curves",
    "show_image_grid",
    "plot_heatmap",
    "readable_text_color",
]

# Colour-blind-safe palette (Okabe & Ito, 2008), used in this order by every figure.
BOOK_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Apply the book's matplotlib style (small figures, readable fonts, the book palette)."""
    from cycler import cycler

    plt.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": 90,
        "savefig.dpi": 90,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": cycler(color=BOOK_COLORS),
        "font.size": 10,
        "axes.titlesize": 11,
        "legend.frameon": False,
        "image.cmap": "viridis",
    })


def _to_numpy(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()  # torch tensor
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers, got {type(x).__name__}") from exc


@checked
def plot_learning_curves(history: Duck("as_dict") | dict, ax: plt.Axes | None = None, *,
                         metric: OneOf("loss", "acc") = "loss", title: str | None = None) -> plt.Axes:
    """Plot train (and validation) ``loss`` or ``acc`` per epoch from a :class:`~utils.training.History`
    or a dict with keys ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``."""
    if metric not in {"loss", "acc"}:
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    data = history.as_dict() if hasattr(history, "as_dict") else history
    if not isinstance(data, dict) or f"train_{metric}" not in data:
        raise TypeError(f"history must be a History or a dict with 'train_{metric}', got {type(history).__name__}")
    ax = ax or plt.subplots()[1]
    for split in ("train", "val"):
        values = data.get(f"{split}_{metric}") or []
        if len(values):
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=split)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if metric == "acc" else "loss")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


@checked
def show_image_grid(images: np.ndarray | Sequence | Duck("detach"), labels: Sequence[object] | None = None, *,
                    ncols: PosInt = 8, cmap: str = "gray_r", size: PosFloat = 1.0,
                    title: str | None = None) -> plt.Figure:
    """Show ``images`` of shape ``(N, H, W)`` or ``(N, 1, H, W)`` in a grid, with optional labels."""
    arr = _to_numpy(images, "images")
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]  # (N, 1, H, W) -> (N, H, W)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W) or (N, 1, H, W), got {tuple(arr.shape)}")
    if labels is not None and len(labels) != len(arr):
        raise ValueError(f"labels must have one entry per image ({len(arr)}), got {len(labels)}")
    if not isinstance(ncols, int) or ncols <= 0:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    n = len(arr)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(arr[i], cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@checked
def readable_text_color(image: Duck("cmap", "norm"), value: Finite) -> str:
    """``"white"`` or ``"black"``, whichever reads better on the colour ``image`` (an ``imshow``
    result) gives ``value``: white on dark cells by perceived luminance (ITU-R BT.601), whatever the
    colour map."""
    red, green, blue, _ = image.cmap(image.norm(value))
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"


@checked
def plot_heatmap(matrix: np.ndarray | Sequence | Duck("detach"), ax: plt.Axes | None = None, *,
                 row_labels: Sequence[str] | None = None,
                 col_labels: Sequence[str] | None = None, cmap: str = "viridis", annotate: bool = False,
                 fmt: str = "{:.2f}", vmin: Finite | None = None, vmax: Finite | None = None,
                 colorbar: bool = True, title: str | None = None) -> plt.Axes:
    """Draw a 2-D ``matrix`` ``(R, C)`` as a heatmap with optional tick labels and cell values."""
    arr = _to_numpy(matrix, "matrix")
    if arr.ndim != 2:
        raise ValueError(f"matrix must be 2-D (R, C), got shape {tuple(arr.shape)}")
    if row_labels is not None and len(row_labels) != arr.shape[0]:
        raise ValueError(f"row_labels must have {arr.shape[0]} entries, got {len(row_labels)}")
    if col_labels is not None and len(col_labels) != arr.shape[1]:
        raise ValueError(f"col_labels must have {arr.shape[1]} entries, got {len(col_labels)}")
    ax = ax or plt.subplots()[1]
    im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.grid(False)
    if row_labels is not None:
        ax.set_yticks(range(arr.shape[0]), labels=list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(arr.shape[1]), labels=list(col_labels), rotation=45, ha="right")
    if annotate:
        for (r, c), v in np.ndenumerate(arr):
            color = readable_text_color(im, v) if np.isfinite(v) else "black"
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7, color=color)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax
