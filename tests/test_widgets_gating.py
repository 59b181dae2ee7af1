import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from utils.rnn import manual_gate_trace  # noqa: E402
from utils.rnn_models import SequenceRegressor, parse_adding_sequence, trace_model  # noqa: E402
from utils.widgets.gating import (GatePlot, gate_frames, make_gating_widget, make_manual_gate_widget,  # noqa: E402
                                  plot_gate_view, plot_manual_gate, pulse_gates)


@pytest.fixture()
def models():
    torch.manual_seed(0)
    return {"GRU": SequenceRegressor("gru", 2, 8), "LSTM": SequenceRegressor("lstm", 2, 8)}


def test_plot_gate_view_draws_one_panel_per_gate_and_state(models):
    X, target = parse_adding_sequence("31[7]2 0 5[4]8")
    view = trace_model(models["LSTM"], X)
    before = {k: v.copy() for k, v in view.panels.items()}
    fig = plot_gate_view(view, X, 3, target=target)
    assert len(fig.axes) == 6 and "target 1.100" in fig.axes[0].get_title() and "GRU" not in fig.axes[0].get_title()
    assert all((before[k] == view.panels[k]).all() for k in before)  # the view is not mutated
    with pytest.raises(ValueError, match="t must be in"):
        plot_gate_view(view, X, 8)
    plt.close("all")


def test_gate_plot_update_moves_the_box(models):
    X, target = parse_adding_sequence("31[7]2 0 5[4]8")
    plot = GatePlot(trace_model(models["GRU"], X), X, target=target)
    plot.update(trace_model(models["GRU"], X), X, 5)
    assert all(b.get_x() == 4.5 for b in plot.boxes)
    first, second = plot.png_at(2), plot.png_at(6)  # the fast path: background cached, boxes redrawn
    assert first[:4] == b"\x89PNG" and first != second and plot.png_at(2) == first
    with pytest.raises(ValueError, match="t must be in"):
        plot.png_at(8)
    with pytest.raises(ValueError, match="build a new GatePlot"):
        Y, _ = parse_adding_sequence("1[2]3[4]")
        plot.update(trace_model(models["GRU"], Y), Y, 0)
    plt.close("all")


def test_gating_widget_reacts_to_controls(models):
    ui = make_gating_widget(models, {"seq": parse_adding_sequence("31[7]2 0 5[4]8")})
    (model_dd, seq_dd, typed), t_slider, message, image = ui.children[0].children, *ui.children[1:]
    first = image.value
    t_slider.value = 4
    assert image.value != first
    model_dd.value = "LSTM"
    seq_dd.value = "typed"
    assert t_slider.max == len("31[7]2 0 5[4]8 6 1 9 2".replace(" ", "")) - 4 - 1
    typed.value = "1 2 3"  # no marks: a message, not an exception
    assert ui.update() < 5.0
    plt.close("all")


def test_manual_gate_widget_and_static_views(models):
    ui = make_manual_gate_widget()
    assert len(ui.children) == 2
    x = torch.tensor([0.0, 1.0, 0.0])
    z = pulse_gates(x, 1.0, 0.1)
    assert z.tolist() == pytest.approx([0.1, 1.0, 0.1])
    ax = plot_manual_gate(manual_gate_trace(x, z, 0.0), "toy")
    assert ax.get_title() == "toy"
    X, target = parse_adding_sequence("31[7]2 0 5[4]8")
    frames = gate_frames(models["GRU"], X, [0, 2, 7], target=target)
    assert len(frames) == 3
    plt.close("all")


def test_gating_explorer_builder_exports_the_book_convention(models):
    import base64

    import numpy as np

    from utils.rnn import gru_weights_from_torch
    from utils.widgets.gating import gating_explorer

    X = torch.rand(6, 2)
    ex = gating_explorer(models, {"s": (X, 0.5)}, default_sequence="s")
    cfg = ex.config
    gru = cfg["models"][0]
    assert (gru["cell"], gru["H"], gru["I"]) == ("gru", 8, 2)
    W_ih = np.frombuffer(base64.b64decode(gru["W_ih"]), dtype="<f4").reshape(24, 2)
    np.testing.assert_array_equal(W_ih, gru_weights_from_torch(models["GRU"].rnn).W_ih.numpy())  # z rows negated
    assert cfg["sequences"][0]["x"] == X.flatten().tolist() and cfg["default_sequence"] == "s"
    with pytest.raises(ValueError, match="gru"):
        gating_explorer({"RNN": SequenceRegressor("rnn", 2, 4)})
    with pytest.raises(ValueError, match="mark"):
        gating_explorer(models, typed="1 2 3")
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        gating_explorer(models, {"bad": (torch.zeros(5), 0.0)})
    with pytest.raises(ValueError, match="default_sequence"):
        gating_explorer(models, {"s": (X, 0.5)}, default_sequence="t")
