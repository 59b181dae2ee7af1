"""The training-and-inference cost calculator: text view, static table, figure and widget.

Compute lives in :func:`utils.scaling.estimate_cost`; this module formats, draws and wires
controls. ``make_cost_widget()`` is the live view (JupyterLab, Colab); the HTML book, which has
no kernel, shows :func:`preset_table` and :func:`plot_cost_curve` instead.

Every preset is an *assumption* (hardware, utilisation, price), not a measurement.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np

from utils.scaling import CostEstimate, chinchilla_optimal, estimate_cost

__all__ = ["A100_BF16_PEAK", "H100_BF16_PEAK", "DEFAULTS", "PRESETS", "format_estimate", "preset_table",
           "plot_cost_curve", "make_cost_widget"]

A100_BF16_PEAK = 312e12  # FLOP/s, dense BF16 tensor cores, NVIDIA A100 datasheet
H100_BF16_PEAK = 989e12  # FLOP/s, dense BF16 tensor cores, NVIDIA H100 SXM datasheet

# Keyword arguments of estimate_cost. MFU and price are assumptions: MFU of large runs is well
# below 1, and rental prices per GPU-hour vary several-fold between providers and years.
DEFAULTS = dict(n_params=1e9, n_tokens=20e9, peak_flops=A100_BF16_PEAK, mfu=0.4, n_gpus=64, price_per_gpu_hour=2.0)
PRESETS = {
    "1B, Chinchilla-optimal, 64 A100": DEFAULTS,
    "GPT-3 size, 1024 A100": dict(n_params=175e9, n_tokens=300e9, peak_flops=A100_BF16_PEAK, mfu=0.4, n_gpus=1024,
                                  price_per_gpu_hour=2.0),
    "LLaMA-65B size, 2048 A100": dict(n_params=65.2e9, n_tokens=1.4e12, peak_flops=A100_BF16_PEAK, mfu=0.4,
                                      n_gpus=2048, price_per_gpu_hour=2.0),
    "7B on 2T tokens, 512 H100": dict(n_params=7e9, n_tokens=2e12, peak_flops=H100_BF16_PEAK, mfu=0.4, n_gpus=512,
                                      price_per_gpu_hour=3.0),
}

_ROWS = [("training compute", "{:.3g} FLOPs", "train_flops"), ("GPU-hours", "{:,.0f}", "gpu_hours"),
         ("wall-clock days", "{:,.1f}", "days"), ("training cost", "${:,.0f}", "train_cost"),
         ("inference compute", "{:.3g} FLOPs/token", "inference_flops_per_token"),
         ("inference cost", "${:.3g} per 1M tokens", "inference_cost_per_million_tokens")]


def format_estimate(est: CostEstimate, *, as_html: bool = True) -> str:
    """The estimate as a small HTML table (or plain text lines)."""
    if not isinstance(est, CostEstimate):
        raise TypeError(f"est must be a CostEstimate, got {type(est).__name__}")
    cells = [(label, fmt.format(getattr(est, attr))) for label, fmt, attr in _ROWS]
    if not as_html:
        return "\n".join(f"{label:18s} {value}" for label, value in cells)
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td style='text-align:right'>{html.escape(value)}</td></tr>"
                   for label, value in cells)
    return f"<table>{rows}</table>"


def preset_table(presets: dict[str, dict] | None = None) -> str:
    """One plain-text line per preset: the inputs and the resulting days and costs (the static fallback)."""
    presets = PRESETS if presets is None else presets
    head = (f"{'preset':34s} {'N':>8s} {'D':>8s} {'GPUs':>5s} {'MFU':>4s} {'FLOPs':>8s} {'GPU-h':>10s} "
            f"{'days':>7s} {'train $':>12s} {'$/1M tok':>9s}")
    lines = [head, "-" * len(head)]
    for name, kw in presets.items():
        e = estimate_cost(**kw)
        lines.append(f"{name:34s} {kw['n_params']:8.3g} {kw['n_tokens']:8.3g} {kw['n_gpus']:5.0f} {kw['mfu']:4.2f} "
                     f"{e.train_flops:8.2e} {e.gpu_hours:10,.0f} {e.days:7.1f} {e.train_cost:12,.0f} "
                     f"{e.inference_cost_per_million_tokens:9.3g}")
    return "\n".join(lines)


def plot_cost_curve(*, peak_flops: float = A100_BF16_PEAK, mfu: float = 0.4, price_per_gpu_hour: float = 2.0,
                    tokens_per_param: float = 20.0, ax: plt.Axes | None = None) -> plt.Axes:
    """Training cost against model size for compute-optimal data (``D = tokens_per_param * N``), log-log,
    with the presets marked. Cost grows like ``N^2`` along this line."""
    ax = ax or plt.figure(figsize=(6, 3.6)).add_subplot()
    n = np.logspace(7, 12, 60)
    hw = dict(peak_flops=peak_flops, mfu=mfu, n_gpus=1, price_per_gpu_hour=price_per_gpu_hour)
    cost = [estimate_cost(x, tokens_per_param * x, **hw).train_cost for x in n]
    ax.loglog(n, cost, "k-", lw=1.5, label=f"D = {tokens_per_param:g} N, {mfu:.0%} MFU, ${price_per_gpu_hour:g}/GPU-h")
    for i, (name, kw) in enumerate(PRESETS.items()):
        ax.loglog(kw["n_params"], estimate_cost(**kw).train_cost, "o", color=f"C{i}", label=name)
    ax.set_xlabel("parameters N"), ax.set_ylabel("training cost (USD)")
    ax.set_title("training cost of compute-optimal models", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def make_cost_widget(*, show: bool = True):
    """Sliders for N, D, peak FLOP/s, MFU, GPUs and price; a table of the resulting compute, time and cost.

    The table is an ``ipywidgets.HTML`` updated by ``observe`` callbacks, so it also updates (and
    can be tested) without a browser. Errors are shown in the table's place. Returns the ``VBox``.
    """
    import ipywidgets as w

    style, layout = {"description_width": "150px"}, w.Layout(width="480px")
    log = dict(base=10, step=0.05, style=style, layout=layout, readout_format=".3g")
    lin = dict(style=style, layout=layout)
    controls = {
        "n_params": w.FloatLogSlider(DEFAULTS["n_params"], min=6, max=13, description="parameters N", **log),
        "n_tokens": w.FloatLogSlider(DEFAULTS["n_tokens"], min=8, max=14, description="training tokens D", **log),
        "peak_flops": w.FloatLogSlider(DEFAULTS["peak_flops"], min=11, max=16, description="GPU peak FLOP/s", **log),
        "mfu": w.FloatSlider(DEFAULTS["mfu"], min=0.05, max=1.0, step=0.01, description="MFU", **lin),
        "n_gpus": w.IntSlider(DEFAULTS["n_gpus"], min=1, max=16384, description="number of GPUs", **lin),
        "price_per_gpu_hour": w.FloatSlider(DEFAULTS["price_per_gpu_hour"], min=0.1, max=10.0, step=0.1,
                                            description="USD per GPU-hour", **lin),
    }
    preset = w.Dropdown(options=["(custom)", *PRESETS], description="preset", style=style, layout=layout)
    optimal = w.HTML()
    summary = w.HTML()

    def update(_change=None) -> None:
        try:
            kw = {name: c.value for name, c in controls.items()}
            est = estimate_cost(**kw)
            summary.value = format_estimate(est)
            n_opt, d_opt = chinchilla_optimal(est.train_flops)
            optimal.value = (f"<i>{kw['n_tokens'] / kw['n_params']:.3g} tokens per parameter; "
                             f"for {est.train_flops:.3g} "
                             f"FLOPs, Chinchilla's ~20 tokens/parameter suggests N = {n_opt:.3g}, D = {d_opt:.3g}</i>")
        except (ValueError, TypeError) as exc:
            summary.value = f"<b>cannot compute:</b> {html.escape(str(exc))}"

    def apply_preset(change) -> None:
        if change["new"] in PRESETS:
            for name, value in PRESETS[change["new"]].items():
                controls[name].value = value  # each assignment triggers update()

    for c in controls.values():
        c.observe(update, names="value")
    preset.observe(apply_preset, names="value")
    update()
    ui = w.VBox([preset, *controls.values(), optimal, summary])
    if show:
        from IPython.display import display

        from utils.widgets.fallback import live_with_fallback

        default = format_estimate(estimate_cost(**DEFAULTS))
        display(live_with_fallback(ui, f"<p><b>Default settings</b> (1B parameters, 20B tokens, 64 A100 at "
                                       f"40 % MFU, $2 per GPU-hour):</p>{default}<p><b>The presets:</b></p>"
                                       f"{preset_table()}"))
    return ui
