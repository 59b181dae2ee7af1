"""The convolution explorer: view, widget builder and frames for the HTML book.

Compute lives in :mod:`utils.conv_explorer`; this module only draws. ``make_conv_widget()`` is
the live view (JupyterLab, Colab); ``conv_frames()`` pre-renders a few positions for
:func:`utils.widgets.static.frame_player`, which needs no kernel.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from utils.conv_explorer import KERNELS, ConvStep, conv_step, parse_kernel, pool_views

__all__ = ["PATTERNS", "plot_conv_step", "plot_pooling", "conv_frames", "make_conv_widget"]


def _cross() -> np.ndarray:
    img = np.zeros((8, 8))
    img[3:5, 1:7] = 1.0
    img[1:7, 3:5] = 1.0
    return img


def _square() -> np.ndarray:
    img = np.zeros((8, 8))
    img[2:6, 2:6] = 1.0
    img[3:5, 3:5] = 0.0
    return img


PATTERNS = {"drawn cross": _cross(), "drawn hollow square": _square()}


def _annotate(ax: plt.Axes, values: np.ndarray, fmt: str = "{:.1f}") -> None:
    for (r, c), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7)


def plot_conv_step(step: ConvStep, fig: plt.Figure | None = None) -> plt.Figure:
    """Four panels: padded input with the receptive field, kernel, products (and their sum), output so far."""
    fig = fig or plt.figure(figsize=(11, 3.2))
    fig.clf()
    axes = fig.subplots(1, 4)
    K = step.kernel.shape[0]
    ax = axes[0]
    ax.imshow(step.padded, cmap="gray_r")
    if step.padding:
        p = step.padding
        ax.add_patch(Rectangle((p - 0.5, p - 0.5), step.padded.shape[1] - 2 * p, step.padded.shape[0] - 2 * p,
                               fill=False, ls="--", ec="C2", lw=1))
    ax.add_patch(Rectangle((step.left - 0.5, step.top - 0.5), K, K, fill=False, ec="C1", lw=2.5))
    ax.set_title(f"input (padding {step.padding}, stride {step.stride})", fontsize=9)
    axes[1].imshow(step.kernel, cmap="RdBu_r", vmin=-np.abs(step.kernel).max(), vmax=np.abs(step.kernel).max())
    _annotate(axes[1], step.kernel, "{:.2g}")
    axes[1].set_title("kernel", fontsize=9)
    axes[2].imshow(step.products, cmap="RdBu_r", vmin=-max(np.abs(step.products).max(), 1e-9),
                   vmax=max(np.abs(step.products).max(), 1e-9))
    _annotate(axes[2], step.products)
    axes[2].set_title(f"window x kernel, sum = {step.total:.2f}", fontsize=9)
    finite = step.full_output
    axes[3].imshow(np.ma.masked_invalid(step.output), cmap="viridis", vmin=finite.min(), vmax=finite.max())
    axes[3].add_patch(Rectangle((step.col - 0.5, step.row - 0.5), 1, 1, fill=False, ec="C1", lw=2.5))
    axes[3].set_xlim(-0.5, finite.shape[1] - 0.5)
    axes[3].set_ylim(finite.shape[0] - 0.5, -0.5)
    axes[3].set_title(f"output {finite.shape[0]}x{finite.shape[1]}, position ({step.row}, {step.col})", fontsize=9)
    for a in axes:
        a.set_xticks([]), a.set_yticks([]), a.grid(False)
    fig.tight_layout()
    return fig


def plot_pooling(feature_map: np.ndarray, size: int = 2, fig: plt.Figure | None = None) -> plt.Figure:
    """The feature map next to its max-pooled and average-pooled versions."""
    mx, av = pool_views(feature_map, size)
    fig = fig or plt.figure(figsize=(8, 2.8))
    fig.clf()
    axes = fig.subplots(1, 3)
    vmin, vmax = float(np.nanmin(feature_map)), float(np.nanmax(feature_map))
    for ax, m, title in zip(axes, (feature_map, mx, av), ("feature map", f"max pool {size}x{size}", f"average pool {size}x{size}")):
        ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax)
        if m.size <= 36:
            _annotate(ax, m)
        ax.set_title(f"{title} {m.shape[0]}x{m.shape[1]}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    fig.tight_layout()
    return fig


def conv_frames(image: np.ndarray, kernel: np.ndarray, *, stride: int = 1, padding: int = 0,
                num_frames: int = 12) -> tuple[list[plt.Figure], list[str]]:
    """Figures of evenly spaced kernel positions (first to last) and their captions, for ``frame_player``."""
    last = conv_step(image, kernel, stride=stride, padding=padding).num_positions - 1
    positions = sorted(set(np.linspace(0, last, min(num_frames, last + 1)).round().astype(int).tolist()))
    figs, labels = [], []
    for pos in positions:
        step = conv_step(image, kernel, stride=stride, padding=padding, position=pos)
        figs.append(plot_conv_step(step, plt.figure(figsize=(11, 3.2))))
        labels.append(f"position {pos} = ({step.row}, {step.col}), sum {step.total:.2f}")
    return figs, labels


def make_conv_widget(images: dict[str, np.ndarray] | None = None):
    """The live explorer. ``images`` maps names to 2-D arrays (your own inputs); the bundled digits
    0-4 and two drawn patterns are always offered."""
    import ipywidgets as w
    from IPython.display import display

    from utils.data import load_digits_split

    split = load_digits_split()
    choices = {f"digit {int(split.y_test[i])} (test image {i})": split.X_test[i, 0].numpy() for i in range(5)}
    choices.update(PATTERNS)
    for name, img in (images or {}).items():
        choices[name] = np.asarray(img, dtype=float)
    source = w.Dropdown(options=list(choices), description="input")
    kernel = w.Dropdown(options=list(KERNELS) + ["custom"], value="vertical edge (Sobel)", description="kernel")
    custom = w.Text(value="1 0 -1; 1 0 -1; 1 0 -1", description="custom", layout=w.Layout(width="320px"))
    stride = w.IntSlider(1, 1, 3, description="stride")
    padding = w.IntSlider(1, 0, 2, description="padding")
    position = w.IntSlider(0, 0, 63, description="position")
    pool = w.Checkbox(False, description="show pooling of the output")
    out, errors = w.Output(), w.Output()

    def current_kernel() -> np.ndarray:
        return parse_kernel(custom.value) if kernel.value == "custom" else KERNELS[kernel.value]

    def resize(*_):
        try:
            n = conv_step(choices[source.value], current_kernel(), stride=stride.value, padding=padding.value).num_positions
            position.max = n - 1
            position.value = min(position.value, n - 1)
        except (ValueError, TypeError):
            pass

    for ctl in (source, kernel, custom, stride, padding):
        ctl.observe(resize, names="value")

    def draw(src, kern, cust, s, p, pos, show_pool):
        errors.clear_output()
        try:
            step = conv_step(choices[src], current_kernel(), stride=s, padding=p, position=min(pos, position.max))
        except (ValueError, TypeError) as exc:
            with errors:
                print(f"cannot compute: {exc}")
            return
        plot_conv_step(step)
        plt.show()
        if show_pool:
            plot_pooling(step.full_output)
            plt.show()

    view = w.interactive_output(draw, {"src": source, "kern": kernel, "cust": custom, "s": stride, "p": padding,
                                       "pos": position, "show_pool": pool})
    resize()
    ui = w.VBox([w.HBox([source, kernel, custom]), w.HBox([stride, padding, position, pool]), errors, view])
    display(ui)
    return ui
