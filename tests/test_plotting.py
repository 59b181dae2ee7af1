import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils import plotting
from utils.training import History


def test_style_is_applied_only_on_request():
    plt.rcdefaults()
    assert plt.rcParams["axes.spines.top"] is True
    plotting.use_book_style()
    assert plt.rcParams["axes.spines.top"] is False
    plt.rcdefaults()


def test_learning_curves_from_history_and_dict():
    h = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.7], train_acc=[0.5, 0.8], val_acc=[0.4, 0.7])
    ax = plotting.plot_learning_curves(h)
    assert len(ax.lines) == 2
    ax = plotting.plot_learning_curves({"train_acc": [0.1, 0.2]}, metric="acc")
    assert len(ax.lines) == 1 and ax.get_ylabel() == "accuracy"
    with pytest.raises(ValueError, match="metric"):
        plotting.plot_learning_curves(h, metric="f1")
    with pytest.raises(TypeError, match="history"):
        plotting.plot_learning_curves([1, 2])
    plt.close("all")


def test_image_grid_and_heatmap_do_not_mutate_inputs():
    imgs = torch.rand(5, 1, 8, 8)
    before = imgs.clone()
    fig = plotting.show_image_grid(imgs, labels=list("abcde"), ncols=3)
    assert len(fig.axes) == 6 and torch.equal(imgs, before)
    with pytest.raises(ValueError, match="images"):
        plotting.show_image_grid(torch.rand(8, 8))
    with pytest.raises(ValueError, match="labels"):
        plotting.show_image_grid(imgs, labels=["a"])
    m = np.arange(6.0).reshape(2, 3)
    ax = plotting.plot_heatmap(m, row_labels=["x", "y"], col_labels=list("abc"), annotate=True)
    assert len(ax.texts) == 6
    with pytest.raises(ValueError, match="matrix"):
        plotting.plot_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="col_labels"):
        plotting.plot_heatmap(m, col_labels=["a"])
    plt.close("all")


def test_heatmap_numbers_stay_readable_in_any_colour_map():
    import matplotlib.pyplot as plt
    import numpy as np

    from utils.plotting import plot_heatmap

    for cmap in ("Blues", "viridis"):
        ax = plot_heatmap(np.array([[0.0, 1.0]]), annotate=True, cmap=cmap, colorbar=False)
        colours = {t.get_text(): t.get_color() for t in ax.texts}
        light, dark = ("0.00", "1.00") if cmap == "Blues" else ("1.00", "0.00")  # Blues: 0 is white; viridis: 0 is dark
        assert colours[light] == "black" and colours[dark] == "white", (cmap, colours)
        plt.close(ax.figure)
