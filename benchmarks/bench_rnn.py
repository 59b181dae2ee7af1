"""Recurrent benchmark: our from-scratch RNN/GRU/LSTM (utils.rnn, a Python loop over time) vs
torch's fused nn.RNN/nn.GRU/nn.LSTM, forward and backward; and the gating explorer's update time
(compute of the gates, redraw of the figure).

    .venv/bin/python benchmarks/bench_rnn.py

Runs everything in one process and prints ratios, so that a busy machine slows both sides.
"""

from __future__ import annotations

import torch
from torch import nn

from _timing import timeit


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from utils.rnn import gru_weights_from_torch, run_gru, run_lstm, run_rnn, weights_from_torch
    from utils.rnn_models import SequenceRegressor, parse_adding_sequence, trace_model
    from utils.widgets.gating import GatePlot, render_png

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    B, T, I, H = 64, 30, 2, 32
    print(f"forward + backward, X ({B}, {T}, {I}), hidden {H} (median of 5)")
    X = torch.rand(B, T, I)
    for name, cls, ours, conv in (("RNN", nn.RNN, run_rnn, weights_from_torch),
                                  ("GRU", nn.GRU, run_gru, gru_weights_from_torch),
                                  ("LSTM", nn.LSTM, run_lstm, weights_from_torch)):
        ref = cls(I, H, batch_first=True)
        w = conv(ref)
        for t in (w.W_ih, w.W_hh, w.b_ih, w.b_hh):
            t.requires_grad_(True)

        def step_torch():
            out, _ = ref(X)
            out.sum().backward()

        def step_ours():
            out, _ = ours(X, w)
            out.sum().backward()

        t_torch, t_ours = timeit(step_torch, number=10), timeit(step_ours, number=10)
        print(f"  {name:5s} torch {t_torch * 1e3:7.2f} ms   ours {t_ours * 1e3:7.2f} ms   ratio {t_ours / t_torch:5.2f}x")

    print("\ngating explorer (GRU and LSTM, 32 units, a 30-step sequence)")
    X_seq, target = parse_adding_sequence("31[7]2 0 5[4]8 6 1 9 2 3 4 5 6 7 8 9 1 2 3 4 5 6 7 8 9 0 1")
    for cell in ("gru", "lstm"):
        model = SequenceRegressor(cell, 2, 32)
        t_trace = timeit(lambda: trace_model(model, X_seq), repeat=7, number=10)
        view = trace_model(model, X_seq)
        plot = GatePlot(view, X_seq, target=target)
        plot.png_at(0)  # first call draws and caches the background
        t_draw = timeit(lambda: plot.png_at(12), repeat=7, number=5)
        t_new = timeit(lambda: (plot.update(trace_model(model, X_seq), X_seq, 0, target=target), plot.png_at(0)),
                       repeat=5)
        print(f"  {cell.upper():5s} compute (trace_model) {t_trace * 1e3:6.2f} ms (budget 50 ms)   "
              f"time-slider redraw (boxes + PNG) {t_draw * 1e3:6.1f} ms   "
              f"new sequence (trace + full redraw) {t_new * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
