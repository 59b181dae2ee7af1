import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from utils.scaling import estimate_cost
from utils.widgets.cost import DEFAULTS, PRESETS, format_estimate, make_cost_widget, plot_cost_curve, preset_table


def find(ui, description):
    """The control of ``ui`` (a VBox) with this description."""
    return next(c for c in ui.children if getattr(c, "description", None) == description)


def summary(ui):
    return ui.children[-1].value


def test_format_estimate_shows_every_quantity():
    text = format_estimate(estimate_cost(**DEFAULTS), as_html=False)
    for label in ("training compute", "GPU-hours", "wall-clock days", "training cost", "per 1M tokens"):
        assert label in text
    assert "1.2e+20 FLOPs" in text  # 6 * 1e9 * 20e9
    assert format_estimate(estimate_cost(**DEFAULTS)).startswith("<table>")
    with pytest.raises(TypeError, match="CostEstimate"):
        format_estimate({"train_flops": 1.0})


def test_preset_table_has_one_line_per_preset():
    lines = preset_table().splitlines()
    assert len(lines) == 2 + len(PRESETS)
    assert "3.15e+23" in next(line for line in lines if line.startswith("GPT-3"))


def test_plot_cost_curve_draws_the_line_and_the_presets():
    ax = plot_cost_curve()
    assert len(ax.lines) == 1 + len(PRESETS)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plt.close("all")


def test_widget_builds_and_a_slider_changes_the_output_quickly():
    ui = make_cost_widget(show=False)
    before = summary(ui)
    assert "1.2e+20 FLOPs" in before
    params = find(ui, "parameters N")
    t0 = time.perf_counter()
    params.value = 7e10
    elapsed = time.perf_counter() - t0
    after = summary(ui)
    assert after != before and "8.4e+21 FLOPs" in after  # 6 * 7e10 * 20e9
    assert elapsed < 0.05, f"one update took {elapsed * 1e3:.1f} ms"
    gpus = find(ui, "number of GPUs")
    days_before = summary(ui)
    gpus.value = 2 * gpus.value
    assert summary(ui) != days_before


def test_widget_preset_sets_the_sliders():
    ui = make_cost_widget(show=False)
    find(ui, "preset").value = "GPT-3 size, 1024 A100"
    assert find(ui, "parameters N").value == pytest.approx(175e9)
    assert find(ui, "number of GPUs").value == 1024
    assert "3.15e+23 FLOPs" in summary(ui)
