import pytest
import torch
from torch import nn

from utils.rnn import (gru_cell, gru_trace, gru_weights_from_torch, lstm_cell, rnn_cell, run_gru, run_lstm, run_rnn,
                       weights_from_torch)


def _seq(B=3, T=6, I=4, seed=0):
    torch.manual_seed(seed)
    return torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)


def _grads(out, inputs):
    return torch.autograd.grad(out.pow(2).sum(), inputs)


def test_rnn_matches_nn_rnn_outputs_and_gradients():
    X = _seq()
    ref = nn.RNN(4, 5, batch_first=True).double()
    out, h = run_rnn(X, weights_from_torch(ref))
    ref_out, ref_h = ref(X)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h[0])
    torch.testing.assert_close(_grads(out, X), _grads(ref_out, X))


def test_gru_in_the_books_convention_matches_nn_gru():
    X = _seq(seed=1)
    ref = nn.GRU(4, 5, batch_first=True).double()
    out, h = run_gru(X, gru_weights_from_torch(ref))
    ref_out, _ = ref(X)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(_grads(out, X), _grads(ref_out, X))


def test_update_gate_is_one_minus_pytorchs_z():
    ref = nn.GRUCell(4, 5).double()
    gru = nn.GRU(4, 5).double()
    gru.load_state_dict({k + "_l0": v for k, v in ref.state_dict().items()})
    x, h = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    _, gates = gru_cell(x, h, gru_weights_from_torch(gru), return_gates=True)
    z_torch = torch.sigmoid(x @ ref.weight_ih[5:10].T + ref.bias_ih[5:10] + h @ ref.weight_hh[5:10].T + ref.bias_hh[5:10])
    torch.testing.assert_close(gates["z"], 1 - z_torch)


def test_lstm_matches_nn_lstm():
    X = _seq(seed=2)
    ref = nn.LSTM(4, 5, batch_first=True).double()
    out, (h, c) = run_lstm(X, weights_from_torch(ref))
    ref_out, (ref_h, ref_c) = ref(X)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c, ref_c[0])
    torch.testing.assert_close(_grads(out, X), _grads(ref_out, X))


def test_bad_shapes_name_both_sizes():
    w = weights_from_torch(nn.RNN(4, 5))
    with pytest.raises(ValueError, match=r"input feature size mismatch: x has I=3 .* expects I=4"):
        rnn_cell(torch.zeros(2, 3), torch.zeros(2, 5), w)
    with pytest.raises(ValueError, match=r"hidden size mismatch: h has H=6 .* expects H=5"):
        rnn_cell(torch.zeros(2, 4), torch.zeros(2, 6), w)
    with pytest.raises(ValueError, match="GRU weights"):
        gru_cell(torch.zeros(2, 4), torch.zeros(2, 5), w)
    with pytest.raises(ValueError, match=r"\(B, T, I\)"):
        run_rnn(torch.zeros(4, 5), w)
    with pytest.raises(TypeError, match="nn.GRU"):
        gru_weights_from_torch(nn.LSTM(4, 5))
    with pytest.raises(ValueError, match="LSTM weights"):
        lstm_cell(torch.zeros(2, 4), (torch.zeros(2, 5), torch.zeros(2, 5)), w)


def test_gru_trace_shapes_and_consistency():
    gru = nn.GRU(3, 4, batch_first=True)
    w = gru_weights_from_torch(gru)
    x = torch.randn(7, 3)
    tr = gru_trace(x, w)
    assert tr.z.shape == tr.r.shape == tr.candidate.shape == tr.h.shape == (7, 4)
    with torch.no_grad():
        torch.testing.assert_close(tr.h, gru(x[None])[0][0])
    assert ((tr.z >= 0) & (tr.z <= 1)).all()
