"""The gating explorer: a trained GRU's or LSTM's gates and states over time, and a manual-gate toy.

:func:`gating_explorer` is the live view in every surface (the HTML book, JupyterLab, VS Code,
Colab): one HTML output whose JavaScript (``utils/resources/widgets/gating.js``) runs the trained
model's exported weights on a sequence the reader picks or types, reveals gates and states step
by step with a time slider, and lets the reader clamp the gate of chosen units. Its Python
reference is :func:`utils.widgets.reference.gate_trace`.

Compute lives in :mod:`utils.rnn` and :mod:`utils.rnn_models` (``trace_model``,
``manual_gate_trace``); the matplotlib views and the kernel-side ipywidgets builders below draw
it and wire controls in a live kernel. Explained in chapter 3, "Gates: GRU and LSTM".
"""

from __future__ import annotations

import io
from time import perf_counter

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils.rnn import ManualGateTrace, gru_weights_from_torch, holding_units, manual_gate_trace, weights_from_torch
from utils.rnn_models import GateView, SequenceRegressor, parse_adding_sequence, trace_model
from utils.widgets.browser import BrowserExplorer, encode_f32

__all__ = ["GatePlot", "plot_gate_view", "plot_manual_gate", "make_gating_widget", "make_manual_gate_widget",
           "gate_frames", "render_png", "pulse_gates", "gating_explorer"]

_CMAPS = {"candidate": "RdBu_r", "hidden h": "RdBu_r", "cell c": "RdBu_r"}


class GatePlot:
    """The explorer's figure, built once: the input sequence on top (marked steps in red) and one
    heatmap per gate/state below (units vertically, time horizontally). A box marks step ``t``;
    units that keep at least 90% of their state after the first marked step are ticked in red.

    :meth:`update` only changes image data and moves the boxes, so a new step costs no layout
    work; :meth:`png_at` goes further for the time slider: it draws everything but the boxes once,
    keeps that background, and per step only pastes it back, draws the boxes and encodes the PNG
    (see ``benchmarks/bench_rnn.py``).
    """

    def __init__(self, view: GateView, x_seq: torch.Tensor, *, target: float | None = None,
                 fig: plt.Figure | None = None) -> None:
        names = list(view.panels)
        T = x_seq.shape[0]
        self.fig = fig or plt.figure(figsize=(9, 1.2 + 1.25 * len(names)))
        self.fig.clf()
        axes = self.fig.subplots(len(names) + 1, 1, sharex=True,
                                 gridspec_kw={"height_ratios": [0.8] + [1.0] * len(names)})
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.94, bottom=0.08, hspace=0.25)
        self.ax_in, self.axes = axes[0], dict(zip(names, axes[1:]))
        self.images, self.boxes = {}, []
        for name, ax in self.axes.items():
            cmap, lim = ("RdBu_r", (-1, 1)) if name in _CMAPS else ("viridis", (0, 1))
            self.images[name] = ax.imshow(view.panels[name].T, aspect="auto", cmap=cmap, vmin=lim[0],
                                          vmax=lim[1], interpolation="nearest")
            box = plt.Rectangle((-0.5, -0.5), 1, view.panels[name].shape[1], fill=False, ec="k", lw=1.5)
            ax.add_patch(box)
            self.boxes.append(box)
            ax.set_ylabel(name, fontsize=8)
            ax.set_yticklabels([])
            ax.tick_params(axis="y", length=4, color="C3", right=True, left=False)
        self.ax_in.set_ylabel("input", fontsize=8)
        self.ax_in.set_ylim(0, 1)
        self.bars = self.ax_in.bar(np.arange(T), np.zeros(T))
        self._background = None
        self.update(view, x_seq, 0, target=target)

    def update(self, view: GateView, x_seq: torch.Tensor, t: int, *, target: float | None = None) -> plt.Figure:
        """Show ``view`` at step ``t`` (the sequence length must not change)."""
        T = x_seq.shape[0]
        if not 0 <= t < T:
            raise ValueError(f"t must be in [0, {T}), got {t}")
        if len(self.bars) != T:
            raise ValueError(f"this plot was built for {len(self.bars)} steps, got a sequence of {T}; build a new GatePlot")
        x = x_seq.numpy()
        marked = np.flatnonzero(x[:, 1] > 0.5)
        for i, bar in enumerate(self.bars):
            bar.set_height(x[i, 0])
            bar.set_color("C3" if i in marked else "0.6")
        start = int(marked[0]) if len(marked) else 0
        holders = holding_units(torch.from_numpy(view.keep), start).tolist()
        for name, img in self.images.items():
            img.set_data(view.panels[name].T)
            self.axes[name].set_yticks(holders)
        for box in self.boxes:
            box.set_x(t - 0.5)
        self._background = None  # data changed: the cached background is stale
        title = f"{view.cell.upper()}: prediction {view.prediction:.3f}"
        self.ax_in.set_title(title + (f", target {target:.3f}" if target is not None else ""), fontsize=10)
        list(self.axes.values())[-1].set_xlabel(
            f"time step (ticks on the right: {len(holders)} units keep ≥ 90% of their state after step {start})",
            fontsize=8)
        return self.fig


    def png_at(self, t: int, *, dpi: int = 72) -> bytes:
        """PNG of the current data with the boxes at step ``t``, redrawing only the boxes."""
        from PIL import Image

        if not 0 <= t < len(self.bars):
            raise ValueError(f"t must be in [0, {len(self.bars)}), got {t}")
        if self.fig.dpi != dpi:
            self.fig.set_dpi(dpi)
            self._background = None
        canvas = self.fig.canvas
        if self._background is None:
            for box in self.boxes:
                box.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            for box in self.boxes:
                box.set_visible(True)
        canvas.restore_region(self._background)
        for box, ax in zip(self.boxes, self.axes.values()):
            box.set_x(t - 0.5)
            ax.draw_artist(box)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
        return buf.getvalue()


def plot_gate_view(view: GateView, x_seq: torch.Tensor, t: int, fig: plt.Figure | None = None, *,
                   target: float | None = None) -> plt.Figure:
    """Draw ``view`` at step ``t`` in a new (or the given, cleared) figure; see :class:`GatePlot`."""
    plot = GatePlot(view, x_seq, target=target, fig=fig)
    return plot.update(view, x_seq, t, target=target)


def plot_manual_gate(trace: ManualGateTrace, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """The 1-D toy: input pulses (bars), candidate (dashed) and state h (solid) over time."""
    ax = ax or plt.figure(figsize=(6, 2.6)).gca()
    T = len(trace.x)
    ax.bar(np.arange(T), trace.x.numpy(), color="0.8", label="input x")
    ax.plot(trace.candidate.numpy(), "--", color="C1", label="candidate h~")
    ax.plot(trace.h.numpy(), "-o", ms=3, color="C0", label="state h")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def pulse_gates(x: torch.Tensor, z_pulse: float, z_hold: float) -> torch.Tensor:
    """Per-step update gates for the toy: ``z_pulse`` where an input arrives, ``z_hold`` elsewhere."""
    return torch.where(x != 0, torch.tensor(z_pulse), torch.tensor(z_hold))


def gate_frames(model: SequenceRegressor, x_seq: torch.Tensor, steps: list[int], *, target: float | None = None):
    """Figures for :func:`utils.widgets.static.frame_player` (the published book's fallback)."""
    view = trace_model(model, x_seq)
    return [plot_gate_view(view, x_seq, t, plt.figure(figsize=(9, 1.2 + 1.25 * len(view.panels))), target=target)
            for t in steps]


def render_png(fig: plt.Figure, *, dpi: int = 72) -> bytes:
    """The figure as PNG bytes (what the explorer sends to its ``ipywidgets.Image``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def make_gating_widget(models: dict[str, SequenceRegressor], sequences: dict[str, tuple[torch.Tensor, float]]):
    """Live explorer: pick a trained model and a sequence (or type one, e.g. ``31[7]2 0 5[4]8``),
    move the time slider and watch the gates and states. Returns the ``VBox``; its ``.update``
    attribute redraws and returns the seconds it took (used by tests and the benchmark)."""
    import ipywidgets as w
    from IPython.display import display

    if not models or not sequences:
        raise ValueError("models and sequences must each hold at least one entry")
    model_dd = w.Dropdown(options=list(models), description="model")
    seq_dd = w.Dropdown(options=list(sequences) + ["typed"], description="sequence")
    typed = w.Text(value="31[7]2 0 5[4]8 6 1 9 2", description="typed", continuous_update=False,
                   layout=w.Layout(width="360px"))
    first_len = next(iter(sequences.values()))[0].shape[0]
    t_slider = w.IntSlider(0, min=0, max=first_len - 1, description="time step")
    image = w.Image(format="png")
    message = w.Output()
    views: dict[tuple[str, str, str], GateView] = {}  # cache: a time-slider move only redraws
    state: dict[str, GatePlot] = {}

    def update(_change=None) -> float:
        start = perf_counter()
        message.clear_output()
        try:
            if seq_dd.value == "typed":
                x_seq, target = parse_adding_sequence(typed.value)
            else:
                x_seq, target = sequences[seq_dd.value]
            key = (model_dd.value, seq_dd.value, typed.value if seq_dd.value == "typed" else "")
            if key not in views:
                views[key] = trace_model(models[model_dd.value], x_seq)
        except ValueError as exc:
            with message:
                print(f"cannot use this sequence: {exc}")
            return perf_counter() - start
        view, T = views[key], x_seq.shape[0]
        if t_slider.max != T - 1:
            t_slider.max = T - 1  # fires update again with a valid t
        t = min(t_slider.value, T - 1)
        plot = state.get("plot")
        if plot is None or len(plot.bars) != T or list(plot.images) != list(view.panels):
            plt.close(plot.fig) if plot is not None else None
            with plt.ioff():
                state["plot"] = plot = GatePlot(view, x_seq, target=target)
            state["shown"] = None
        if state.get("shown") != key:  # new model or sequence: new data, same layout
            plot.update(view, x_seq, t, target=target)
            state["shown"] = key
        image.value = plot.png_at(t)  # a time-slider move only redraws the boxes
        return perf_counter() - start

    for ctl in (model_dd, seq_dd, typed, t_slider):
        ctl.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([model_dd, seq_dd, typed]), t_slider, message, image])
    ui.update = update
    display(ui)
    return ui


def make_manual_gate_widget(x: torch.Tensor | None = None):
    """Manual mode: set the update gate (at the input pulses and between them) and the reset gate
    by hand on a 1-D toy GRU, and watch the state keep or forget a pulse."""
    import ipywidgets as w
    from IPython.display import display

    x = torch.tensor([0.0, 1.0, 0, 0, 0, 0, 0, 0, -1.0, 0, 0, 0, 0, 0, 0, 0]) if x is None else x
    z_pulse = w.FloatSlider(1.0, min=0.0, max=1.0, step=0.05, description="z at pulses")
    z_hold = w.FloatSlider(0.1, min=0.0, max=1.0, step=0.05, description="z between")
    r = w.FloatSlider(0.0, min=0.0, max=1.0, step=0.05, description="reset r")

    def draw(z_pulse, z_hold, r):
        trace = manual_gate_trace(x, pulse_gates(x, z_pulse, z_hold), r)
        plot_manual_gate(trace, f"update z = {z_pulse:.2f} at pulses, {z_hold:.2f} between; reset r = {r:.2f}")
        plt.show()

    out = w.interactive_output(draw, dict(z_pulse=z_pulse, z_hold=z_hold, r=r))
    ui = w.VBox([w.HBox([z_pulse, z_hold, r]), out])
    from utils.widgets.fallback import live_with_fallback

    trace = manual_gate_trace(x, pulse_gates(x, z_pulse.value, z_hold.value), r.value)
    fig = plot_manual_gate(trace, f"update z = {z_pulse.value:.2f} at pulses, {z_hold.value:.2f} between; "
                                  f"reset r = {r.value:.2f}").figure
    display(live_with_fallback(ui, fig, alt=(
        "The toy GRU unit's input pulses, candidate and state over 16 steps with z = 1 at the pulses and 0.1 "
        "between them: the state jumps at the first pulse, decays slowly until the second pulse overwrites it.")))
    return ui


def _export_regressor(name: str, model: SequenceRegressor) -> dict:
    """A gated regressor's weights for ``gating.js``: the GRU's in the book's convention
    (:func:`utils.rnn.gru_weights_from_torch`, z rows negated), the LSTM's as PyTorch stores them."""
    if not isinstance(model, SequenceRegressor) or model.cell not in ("gru", "lstm"):
        raise ValueError(f"models[{name!r}] must be a SequenceRegressor with cell 'gru' or 'lstm', "
                         f"got {getattr(model, 'cell', type(model).__name__)!r}")
    w = gru_weights_from_torch(model.rnn) if model.cell == "gru" else weights_from_torch(model.rnn)
    return {"name": name, "cell": model.cell, "H": model.rnn.hidden_size, "I": model.rnn.input_size,
            "W_ih": encode_f32(w.W_ih), "W_hh": encode_f32(w.W_hh), "b_ih": encode_f32(w.b_ih),
            "b_hh": encode_f32(w.b_hh), "head_w": encode_f32(model.head.weight[0]),
            "head_b": float(model.head.bias.detach()[0])}


def gating_explorer(models: dict[str, SequenceRegressor], sequences: dict[str, tuple[torch.Tensor, float]] | None = None,
                    *, typed: str = "31[7]2 0 5[4]8 6 1 9 2", default_sequence: str | None = None,
                    title: str = "Gating explorer: a trained network's gates, step by step") -> BrowserExplorer:
    """The gating explorer, computed in the reader's browser (no kernel needed).

    Args:
        models: trained adding-problem regressors by name (``SequenceRegressor`` with a GRU or
            an LSTM, input size 2); their weights are embedded as exact float32.
        sequences: named test sequences ``(X (T, 2), target)``; the reader can also type one.
        typed: the starting typed sequence (digits 0-9 are 0.0-0.9, brackets mark two of them).
        default_sequence: the sequence shown first (a key of ``sequences``; default: the typed one).

    Returns:
        A :class:`~utils.widgets.browser.BrowserExplorer`; display it as a cell's last expression.
    """
    if not models:
        raise ValueError("models must hold at least one trained GRU or LSTM regressor")
    parse_adding_sequence(typed)  # a clear ValueError now rather than a message in the page
    seqs = []
    for name, (x, target) in (sequences or {}).items():
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"sequences[{name!r}] must have shape (T, 2), got {tuple(x.shape)}")
        seqs.append({"name": str(name), "x": x.flatten().tolist(), "target": float(target)})
    if default_sequence is not None and default_sequence not in (sequences or {}):
        raise ValueError(f"default_sequence must be one of {list(sequences or {})}, got {default_sequence!r}")
    config = {"models": [_export_regressor(str(k), m) for k, m in models.items()], "sequences": seqs,
              "typed": typed, "default_sequence": default_sequence or "typed"}
    return BrowserExplorer("gating", config, title=title)
