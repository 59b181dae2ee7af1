import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from utils.optim import race
from utils.widgets.optim import make_optimizer_race_widget, plot_race


def test_plot_race_draws_every_path_without_mutating():
    res = race("Rosenbrock", {"SGD": {"lr": 1e-3}, "Adam": {"lr": 0.05}}, steps=30)
    before = {k: v.copy() for k, v in res.paths.items()}
    fig = plot_race(res)
    assert len(fig.axes) == 2
    assert all(np.array_equal(before[k], res.paths[k]) for k in before)
    plt.close("all")


def test_widget_builds_without_a_browser():
    ui = make_optimizer_race_widget()
    assert ui.children[0].children[0].value == "convex bowl"
    plt.close("all")
