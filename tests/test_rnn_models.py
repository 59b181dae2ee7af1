import pytest
import torch

from utils.data import make_sequence_task
from utils.rnn import holding_units, manual_gate_trace
from utils.rnn_models import (SequenceRegressor, early_gradient_profile, input_gradient_norms, parse_adding_sequence,
                              trace_model, train_regressor)


def test_regressor_shapes_and_bad_input():
    m = SequenceRegressor("gru", 2, 8)
    assert m(torch.rand(3, 5, 2)).shape == (3,)
    with pytest.raises(ValueError, match=r"X must be .* \(B, T, I\) = \(3, 5, 2\)"):
        m(torch.rand(3, 5, 4))
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceRegressor("transformer", 2, 8)
    with pytest.raises(ValueError, match="hidden_size"):
        SequenceRegressor("rnn", 2, 0)


def test_gradients_vanish_with_length_in_an_untrained_rnn():
    torch.manual_seed(0)
    m = SequenceRegressor("rnn", 2, 16)
    prof = early_gradient_profile(m, [5, 20, 40])
    assert prof[0] > 1e3 * prof[1] > 1e6 * prof[2]
    norms = input_gradient_norms(m, torch.rand(4, 10, 2))
    assert norms.shape == (10,) and norms[-1] > norms[0]


def test_training_a_gru_on_a_short_adding_task_beats_the_baseline():
    X, y = make_sequence_task("adding", 1000, 8, seed=0)
    Xt, yt = make_sequence_task("adding", 256, 8, seed=1)
    torch.manual_seed(0)
    run = train_regressor(SequenceRegressor("gru", 2, 16), X, y, Xt, yt, epochs=5, lr=1e-2, batch_size=32)
    baseline = ((yt - y.mean()) ** 2).mean().item()
    assert len(run.test_mse) == 6 and run.test_mse[-1] < 0.2 * baseline
    with pytest.raises(ValueError, match=r"y must be .* \(N,\) = \(1000,\)"):
        train_regressor(SequenceRegressor("gru", 2, 4), X, y[:5], Xt, yt)


def test_trace_model_uses_the_models_own_weights():
    torch.manual_seed(0)
    for cell, names in (("gru", ["update z", "reset r", "candidate", "hidden h"]),
                        ("lstm", ["input i", "forget f", "output o", "cell c", "hidden h"])):
        m = SequenceRegressor(cell, 2, 6)
        X, _ = parse_adding_sequence("12[3]45[6]")
        view = trace_model(m, X)
        assert list(view.panels) == names and all(a.shape == (6, 6) for a in view.panels.values())
        torch.testing.assert_close(torch.from_numpy(view.panels["hidden h"]), m.hidden_states(X[None])[0].detach())
        assert view.prediction == pytest.approx(m(X[None]).item(), abs=1e-6)
    with pytest.raises(ValueError, match="gated model"):
        trace_model(SequenceRegressor("rnn", 2, 4), X)


def test_parse_adding_sequence():
    X, target = parse_adding_sequence("31[7]2 0 5[4]8")
    assert X.shape == (8, 2) and target == pytest.approx(1.1)
    assert X[:, 1].tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="exactly two"):
        parse_adding_sequence("1[2]3")
    with pytest.raises(ValueError, match="cannot read 'a'"):
        parse_adding_sequence("1[2]a[3]")


def test_manual_gate_keeps_or_forgets_a_pulse():
    x = torch.tensor([1.0] + [0.0] * 9)
    keep = manual_gate_trace(x, z=0.05, r=0.0, w_x=2.0)
    forget = manual_gate_trace(x, z=0.95, r=0.0, w_x=2.0)
    assert keep.h[-1] > 0.5 * keep.h[0]  # z near 0: the state holds the pulse
    assert abs(forget.h[-1]) < 1e-3  # z near 1 with r = 0: the state follows the (zero) input
    gated = manual_gate_trace(x, z=torch.tensor([1.0] + [0.0] * 9), r=0.0)  # write, then hold
    assert gated.h[-1] == pytest.approx(torch.tanh(torch.tensor(2.0)).item())
    with pytest.raises(ValueError, match="z must be a probability in"):
        manual_gate_trace(x, z=1.5, r=0.0)
    with pytest.raises(ValueError, match="gates must lie in"):
        manual_gate_trace(x, z=torch.full((10,), 1.5), r=0.0)
    with pytest.raises(ValueError, match=r"z must be .*\[T=10 from x\]"):
        manual_gate_trace(x, z=torch.ones(3), r=0.0)


def test_holding_units():
    keep = torch.tensor([[0.0, 0.0], [0.95, 0.2], [0.99, 0.3]])
    assert holding_units(keep, 1).tolist() == [0]
    with pytest.raises(ValueError, match="start"):
        holding_units(keep, 3)
