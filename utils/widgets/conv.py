"""The convolution explorer: the in-browser explorer, and the matplotlib views and kernel-side widget.

:func:`conv_explorer` is the live view in every surface (the HTML book, JupyterLab, VS Code,
Colab): one HTML output whose JavaScript (``utils/resources/widgets/conv.js``) recomputes a
multi-channel convolution on every change, from inputs the reader draws and kernels the reader
types or picks (hand-made ones, or the learned first-layer kernels of the book's trained
``DigitsCNN``, :func:`learned_kernels`). Its Python reference is
:func:`utils.widgets.reference.conv_reference`.

The single-channel step-by-step compute lives in :mod:`utils.conv_explorer`;
``plot_conv_step``/``plot_pooling`` draw it with matplotlib, ``make_conv_widget()`` wires it to
ipywidgets in a live kernel (lab 02), and ``conv_frames()`` pre-renders positions for
:func:`utils.widgets.static.frame_player`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from utils.conv_explorer import KERNELS, ConvStep, conv_step, parse_kernel, pool_views
from utils.plotting import readable_text_color
from utils.widgets.browser import BrowserExplorer

__all__ = ["PATTERNS", "plot_conv_step", "plot_pooling", "conv_frames", "make_conv_widget", "learned_kernels",
           "explorer_images", "conv_explorer"]


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


def _annotate(ax: plt.Axes, values: np.ndarray, fmt: str = "{:.1f}", image=None) -> None:
    """Write each value in its cell: white on dark cells of ``image`` (the ``imshow`` result), black
    elsewhere, as :func:`utils.plotting.plot_heatmap` does; a negative zero (``-1 * 0``) prints as 0."""
    for (r, c), v in np.ndenumerate(values):
        if not np.isnan(v):
            color = "black" if image is None else readable_text_color(image, v)
            ax.text(c, r, fmt.format(v + 0.0), ha="center", va="center", fontsize=7, color=color)


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
    im = axes[1].imshow(step.kernel, cmap="RdBu_r", vmin=-np.abs(step.kernel).max(), vmax=np.abs(step.kernel).max())
    _annotate(axes[1], step.kernel, "{:.2g}", im)
    axes[1].set_title("kernel", fontsize=9)
    im = axes[2].imshow(step.products, cmap="RdBu_r", vmin=-max(np.abs(step.products).max(), 1e-9),
                        vmax=max(np.abs(step.products).max(), 1e-9))
    _annotate(axes[2], step.products, image=im)
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
        im = ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax)
        if m.size <= 36:
            _annotate(ax, m, image=im)
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


@lru_cache(maxsize=1)
def _learned() -> dict:
    path = resources.files("utils").joinpath("resources", "widgets", "digits_cnn_conv1.json")
    return json.loads(path.read_text(encoding="utf-8"))


def learned_kernels() -> dict[str, tuple[np.ndarray, float]]:
    """The sixteen 3x3 first-layer kernels of the book's trained ``DigitsCNN`` and their biases,
    ``{"DigitsCNN conv1 #k": (kernel (3, 3), bias)}``, exported by ``tools/export_widget_weights.py``
    (the training recipe of chapter 3.2, "Pooling and CNNs"; the file records its test accuracy)."""
    data = _learned()
    w = np.asarray(data["weight"], dtype=np.float32)  # (16, 1, 3, 3)
    b = np.asarray(data["bias"], dtype=np.float32)  # (16,)
    return {f"DigitsCNN conv1 #{k}": (w[k, 0].astype(np.float64), float(b[k])) for k in range(w.shape[0])}


def explorer_images(images: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The inputs the explorer offers: test digits 0-4 of the book's split, the drawn patterns,
    a blank grid to draw on, and ``images`` (your own 8x8 arrays)."""
    from utils.data import load_digits_split

    split = load_digits_split()
    choices = {f"digit {int(split.y_test[i])} (test image {i})": split.X_test[i, 0].numpy().astype(np.float64)
               for i in range(5)}
    choices.update({k: v.copy() for k, v in PATTERNS.items()})
    choices["blank (draw your own)"] = np.zeros((8, 8))
    for name, img in (images or {}).items():
        arr = np.asarray(img, dtype=np.float64)
        if arr.shape != (8, 8):
            raise ValueError(f"images[{name!r}] must have shape (8, 8) like the book's digits, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"images[{name!r}] must hold finite numbers")
        choices[str(name)] = arr
    return choices


def conv_explorer(images: dict[str, np.ndarray] | None = None, *, inputs: tuple[str, ...] = (),
                  kernels: list[list[str]] | None = None, bias: list[float] | None = None, c_in: int = 1,
                  c_out: int = 1, stride: int = 1, padding: int = 1, dilation: int = 1, position: int = 0,
                  title: str = "Convolution explorer: draw, type kernels, change stride, padding and dilation"
                  ) -> BrowserExplorer:
    """The convolution explorer, computed in the reader's browser (no kernel needed).

    Args:
        images: your own 8x8 inputs, added to the digits, patterns and blank grid.
        inputs: the image shown first in input channels 0, 1, 2 (names from :func:`explorer_images`).
        kernels: starting text of kernel ``w[o][c]`` (e.g. ``"-1 0 1; -2 0 2; -1 0 1"``), up to
            4 output x 3 input channels; missing entries get the vertical Sobel kernel.
        bias: starting bias per output channel.
        c_in, c_out, stride, padding, dilation, position: starting controls (1-3 input channels,
            1-4 output channels, stride 1-3, padding 0-3, dilation 1-3).

    Returns:
        A :class:`~utils.widgets.browser.BrowserExplorer`; display it as a cell's last expression.
    """
    for name, value, lo, hi in (("c_in", c_in, 1, 3), ("c_out", c_out, 1, 4), ("stride", stride, 1, 3),
                                ("padding", padding, 0, 3), ("dilation", dilation, 1, 3)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    choices = explorer_images(images)
    names = list(choices)
    default_inputs = [names[0], names[1], names[2]]  # three different digits
    for c, name in enumerate(inputs):
        if name not in choices:
            raise ValueError(f"inputs[{c}] must be one of {names}, got {name!r}")
        default_inputs[c] = name
    kernels = kernels or []
    for row in kernels:
        for text in row:
            parse_kernel(text)  # a clear ValueError now rather than a message in the page
    presets = [[name, int(k.shape[0]), k.ravel().tolist(), None] for name, k in KERNELS.items()]
    presets += [[name, 3, k.ravel().tolist(), b] for name, (k, b) in learned_kernels().items()]
    config = {
        "H": 8, "W": 8,
        "images": [[name, img.ravel().tolist()] for name, img in choices.items()],
        "presets": presets,
        "defaults": {"inputs": default_inputs, "c_in": c_in, "c_out": c_out, "kernels": kernels,
                     "bias": list(bias or []), "stride": stride, "padding": padding, "dilation": dilation,
                     "position": int(position), "fallback_kernel": "-1 0 1; -2 0 2; -1 0 1"},
    }
    return BrowserExplorer("conv", config, title=title)
