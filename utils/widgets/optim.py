"""The optimiser race: contour plot with trajectories, and loss curves side by side.

Compute lives in :func:`utils.optim.race`; this module only draws and wires controls.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from utils.optim import SURFACES, RaceResult, race
from utils.widgets.fallback import live_with_fallback

__all__ = ["OPTIMIZER_COLORS", "plot_race", "make_optimizer_race_widget", "default_race_figure"]

OPTIMIZER_COLORS = {"SGD": "C0", "momentum": "C1", "RMSprop": "C2", "Adam": "C3"}


def plot_race(result: RaceResult, fig: plt.Figure | None = None, *, title: str | None = None) -> plt.Figure:
    """Left: contours of the surface with each optimiser's path; right: loss per step (log scale)."""
    fig = fig or plt.figure(figsize=(9, 3.2))
    fig.clf()
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    s = result.surface
    xs, ys = np.linspace(*s.xlim, 200), np.linspace(*s.ylim, 200)
    X, Y = np.meshgrid(xs, ys)
    Z = s.f(X, Y)
    levels = np.unique(np.quantile(Z, np.linspace(0.0, 0.95, 25)))
    # Filled bands rather than 25 antialiased contour lines: as readable, and the PNG a notebook stores is
    # a third of the size (chapter 3.12 stores five of these figures plus the widget's).
    ax.contourf(X, Y, Z, levels=levels, cmap="Greys", alpha=0.45, extend="max")
    if s.minimum is not None:
        ax.plot(*s.minimum, "k*", ms=10)
    for name, path in result.paths.items():
        c = OPTIMIZER_COLORS.get(name)
        ax.plot(path[:, 0], path[:, 1], ".-", color=c, ms=3, lw=1, label=name)
        ax2.plot(result.losses[name], color=c, label=name)
    ax.plot(*next(iter(result.paths.values()))[0], "ko", ms=5)
    ax.set_xlim(*s.xlim), ax.set_ylim(*s.ylim)
    ax.set_title(title or f"{s.name}: paths from the black dot", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    positive = all((v > 0).all() for v in result.losses.values())
    ax2.set_yscale("log" if positive else "linear")  # the saddle's loss goes negative
    ax2.set_xlabel("step"), ax2.set_ylabel("loss (log scale)" if positive else "loss")
    ax2.set_title("loss per step", fontsize=10)
    fig.tight_layout()
    return fig


def make_optimizer_race_widget():
    """Live race: surface, optimisers, learning rate, momentum, betas, gradient noise, steps, start point."""
    import ipywidgets as w
    from IPython.display import display

    surface = w.Dropdown(options=list(SURFACES), description="surface")
    chosen = w.SelectMultiple(options=list(OPTIMIZER_COLORS), value=("SGD", "momentum", "Adam"), description="optimisers", rows=4)
    lr = w.FloatLogSlider(value=0.02, base=10, min=-4, max=0, step=0.1, description="lr", continuous_update=False)
    momentum = w.FloatSlider(0.9, min=0.0, max=0.99, step=0.01, description="momentum", continuous_update=False)
    beta1 = w.FloatSlider(0.9, min=0.0, max=0.99, step=0.01, description="Adam β1", continuous_update=False)
    beta2 = w.FloatSlider(0.999, min=0.5, max=0.999, step=0.001, readout_format=".3f", description="Adam β2", continuous_update=False)
    noise = w.FloatSlider(0.0, min=0.0, max=5.0, step=0.1, description="grad noise", continuous_update=False)
    steps = w.IntSlider(100, min=10, max=500, step=10, description="steps", continuous_update=False)
    x0 = w.FloatText(value=SURFACES[surface.value].start[0], description="start x", layout=w.Layout(width="160px"))
    y0 = w.FloatText(value=SURFACES[surface.value].start[1], description="start y", layout=w.Layout(width="160px"))
    errors = w.Output()

    def reset_start(change):
        x0.value, y0.value = SURFACES[change["new"]].start

    surface.observe(reset_start, names="value")

    def draw(surface, chosen, lr, momentum, beta1, beta2, noise, steps, x0, y0):
        errors.clear_output()
        try:
            cfg = {n: {"lr": lr, "momentum": momentum, "betas": (beta1, beta2)} for n in chosen}
            result = race(surface, cfg, steps=steps, start=(x0, y0), noise=noise)
        except (ValueError, TypeError) as exc:
            with errors:
                print(f"cannot run: {exc}")
            return
        if not cfg:
            with errors:
                print("choose at least one optimiser")
            return
        plot_race(result)
        plt.show()

    view = w.interactive_output(draw, dict(surface=surface, chosen=chosen, lr=lr, momentum=momentum, beta1=beta1,
                                           beta2=beta2, noise=noise, steps=steps, x0=x0, y0=y0))
    ui = w.VBox([w.HBox([surface, chosen, w.VBox([x0, y0])]), w.HBox([lr, momentum, noise]),
                 w.HBox([beta1, beta2, steps]), errors, view])
    display(live_with_fallback(ui, default_race_figure(), alt=DEFAULT_RACE_ALT))
    return ui


DEFAULT_RACE_ALT = ("Contour plot of the convex bowl with the paths of SGD, momentum and Adam from the same "
                    "start point (learning rate 0.02, 100 steps), and their losses per step on a log scale.")


def default_race_figure() -> plt.Figure:
    """The race the widget opens with (its default controls), drawn as a figure: the widget's
    kernel-free counterpart in the published book."""
    name = next(iter(SURFACES))
    cfg = {n: {"lr": 0.02, "momentum": 0.9, "betas": (0.9, 0.999)} for n in ("SGD", "momentum", "Adam")}
    return plot_race(race(name, cfg, steps=100, start=SURFACES[name].start, noise=0.0))
