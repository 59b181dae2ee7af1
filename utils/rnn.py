"""Recurrent cells from scratch: vanilla RNN, GRU and LSTM, and the compute of the gating explorer.

Explained in chapter 3, "Recurrent networks and gates". Each cell matches its PyTorch counterpart
(``nn.RNN``, ``nn.GRU``, ``nn.LSTM``) given the same weights (tested, float64, outputs and
gradients); ours return their gates so that a learner can look at them.

Shapes: B batch, T time steps, I input features, H hidden units.

**GRU convention.** The book writes the GRU as Chung et al. (2014) do:

    z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)             update gate
    r_t = sigmoid(W_r x_t + U_r h_{t-1} + b_r)             reset gate
    h~_t = tanh(W_h x_t + r_t * (U_h h_{t-1} + b_hn) + b_in)  candidate
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

PyTorch (like Cho et al., 2014, eq. 7, and d2l) writes ``h_t = (1 - z) * n + z * h_{t-1}``: the same
model with z replaced by 1 - z.
Since sigmoid(-a) = 1 - sigmoid(a), :func:`gru_weights_from_torch` negates the z rows of
PyTorch's weights and biases, and the two then agree exactly. (Like PyTorch, the reset gate
multiplies ``U_h h_{t-1} + b_hn``, bias included ("reset after"); the published equations of Cho et al.
and of Chung et al. apply it before U_h, a different function, not a reparametrisation.) PyTorch stacks
the GRU's rows as [r, z, n] and the LSTM's as [i, f, g, o].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from utils._validate import Finite, Float, NonNegInt, Prob, Tensor, checked

__all__ = [
    "CellWeights", "weights_from_torch", "gru_weights_from_torch",
    "rnn_cell", "gru_cell", "lstm_cell", "run_rnn", "run_gru", "run_lstm", "GRUTrace", "gru_trace",
    "LSTMTrace", "lstm_trace", "holding_units", "ManualGateTrace", "manual_gate_trace",
]


@checked
@dataclass
class CellWeights:
    """Weights of one recurrent layer in PyTorch's layout: W_ih ``(G*H, I)``, W_hh ``(G*H, H)``,
    b_ih and b_hh ``(G*H,)`` with G = 1 (RNN), 3 (GRU) or 4 (LSTM)."""

    W_ih: Float[Tensor, "GH I"]
    W_hh: Float[Tensor, "GH H"]
    b_ih: Float[Tensor, "GH"]
    b_hh: Float[Tensor, "GH"]

    @property
    def hidden_size(self) -> int:
        return self.W_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.W_ih.shape[1]


@checked
def weights_from_torch(module: nn.RNNBase) -> CellWeights:
    """Copy the first layer's weights of an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` (unchanged layout)."""
    if not isinstance(module, nn.RNNBase):
        raise TypeError(f"module must be nn.RNN, nn.GRU or nn.LSTM, got {type(module).__name__}")
    return CellWeights(module.weight_ih_l0.detach().clone(), module.weight_hh_l0.detach().clone(),
                       module.bias_ih_l0.detach().clone(), module.bias_hh_l0.detach().clone())


@checked
def gru_weights_from_torch(module: nn.GRU) -> CellWeights:
    """GRU weights converted to the book's convention: the z rows (second third) are negated."""
    if not isinstance(module, nn.GRU):
        raise TypeError(f"module must be nn.GRU, got {type(module).__name__}")
    w = weights_from_torch(module)
    H = w.hidden_size
    for t in (w.W_ih, w.W_hh, w.b_ih, w.b_hh):
        t[H:2 * H] *= -1  # sigmoid(-a) = 1 - sigmoid(a): PyTorch's z becomes the book's 1 - z
    return w


def _check(x: torch.Tensor, h: torch.Tensor, w: CellWeights, gates: int, name: str) -> None:
    if x.ndim != 2 or h.ndim != 2:
        raise ValueError(f"x must be (B, I) and h (B, H), got x {tuple(x.shape)} and h {tuple(h.shape)}")
    if x.dtype != w.W_ih.dtype:
        raise TypeError(f"x must have the dtype of the weights w ({w.W_ih.dtype}), got {x.dtype}")
    if w.W_ih.shape[0] != gates * w.hidden_size:
        raise ValueError(f"{name} weights must have {gates}*H rows, got W_ih {tuple(w.W_ih.shape)}")
    if x.shape[1] != w.input_size:
        raise ValueError(f"input feature size mismatch: x has I={x.shape[1]} features but W_ih expects "
                         f"I={w.input_size} (W_ih shape {tuple(w.W_ih.shape)})")
    if h.shape[1] != w.hidden_size:
        raise ValueError(f"hidden size mismatch: h has H={h.shape[1]} units but W_hh expects "
                         f"H={w.hidden_size} (W_hh shape {tuple(w.W_hh.shape)})")


@checked
def rnn_cell(x: Float[Tensor, "B I"], h: Float[Tensor, "B H"], w: CellWeights) -> torch.Tensor:
    """h_t = tanh(W x_t + U h_{t-1} + b): ``(B, I), (B, H) -> (B, H)``. Counterpart: ``nn.RNN``."""
    _check(x, h, w, 1, "RNN")
    return torch.tanh(x @ w.W_ih.T + w.b_ih + h @ w.W_hh.T + w.b_hh)


@checked
def gru_cell(x: Float[Tensor, "B I"], h: Float[Tensor, "B H"], w: CellWeights, *, return_gates: bool = False):
    """One GRU step in the book's convention (see the module docstring); weights from
    :func:`gru_weights_from_torch`. Returns ``h_t`` ``(B, H)``, or ``(h_t, {"z", "r", "candidate"})``."""
    _check(x, h, w, 3, "GRU")
    gi = x @ w.W_ih.T + w.b_ih  # (B, 3H): input part of [r, z, n]
    gh = h @ w.W_hh.T + w.b_hh  # (B, 3H): recurrent part
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)  # reset gate
    z = torch.sigmoid(i_z + h_z)  # update gate
    candidate = torch.tanh(i_n + r * h_n)  # the reset gate scales the old state inside the candidate
    h_new = (1 - z) * h + z * candidate  # z -> 1: take the candidate; z -> 0: keep the old state
    return (h_new, {"z": z, "r": r, "candidate": candidate}) if return_gates else h_new


@checked
def lstm_cell(x: Float[Tensor, "B I"], state: tuple[Float[Tensor, "B H"], Float[Tensor, "B H"]], w: CellWeights, *,
              return_gates: bool = False):
    """One LSTM step: i, f, o input/forget/output gates, g the candidate; c_t = f c_{t-1} + i g,
    h_t = o tanh(c_t). Returns ``(h_t, c_t)`` or ``((h_t, c_t), {"i", "f", "g", "o"})``. Counterpart: ``nn.LSTM``."""
    h, c = state
    _check(x, h, w, 4, "LSTM")
    gates = x @ w.W_ih.T + w.b_ih + h @ w.W_hh.T + w.b_hh  # (B, 4H), rows [i, f, g, o]
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return ((h_new, c_new), {"i": i, "f": f, "g": g, "o": o}) if return_gates else (h_new, c_new)


def _check_seq(X: torch.Tensor) -> None:
    if not isinstance(X, torch.Tensor) or X.ndim != 3:
        raise ValueError(f"X must have shape (B, T, I), got {tuple(getattr(X, 'shape', ()))}")


@checked
def run_rnn(X: Float[Tensor, "B T I"], w: CellWeights,
            h0: Float[Tensor, "B H"] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unroll :func:`rnn_cell` over time: ``X (B, T, I) -> (outputs (B, T, H), h_T (B, H))`` like ``nn.RNN(batch_first=True)``."""
    _check_seq(X)
    h = X.new_zeros(X.shape[0], w.hidden_size) if h0 is None else h0
    outs = []
    for t in range(X.shape[1]):
        h = rnn_cell(X[:, t], h, w)
        outs.append(h)
    return torch.stack(outs, dim=1), h


@checked
def run_gru(X: Float[Tensor, "B T I"], w: CellWeights,
            h0: Float[Tensor, "B H"] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unroll :func:`gru_cell`: ``(B, T, I) -> ((B, T, H), (B, H))``, equal to ``nn.GRU`` given
    :func:`gru_weights_from_torch` weights."""
    _check_seq(X)
    h = X.new_zeros(X.shape[0], w.hidden_size) if h0 is None else h0
    outs = []
    for t in range(X.shape[1]):
        h = gru_cell(X[:, t], h, w)
        outs.append(h)
    return torch.stack(outs, dim=1), h


@checked
def run_lstm(X: Float[Tensor, "B T I"], w: CellWeights,
             state: tuple[Float[Tensor, "B H"], Float[Tensor, "B H"]] | None = None):
    """Unroll :func:`lstm_cell`: ``(B, T, I) -> ((B, T, H), (h_T, c_T))`` like ``nn.LSTM(batch_first=True)``."""
    _check_seq(X)
    zeros = X.new_zeros(X.shape[0], w.hidden_size)
    h, c = (zeros, zeros.clone()) if state is None else state
    outs = []
    for t in range(X.shape[1]):
        h, c = lstm_cell(X[:, t], (h, c), w)
        outs.append(h)
    return torch.stack(outs, dim=1), (h, c)


@checked
@dataclass(frozen=True)
class GRUTrace:
    """Per-step GRU internals for one sequence, each ``(T, H)``: update gate z, reset gate r,
    candidate and hidden state (the gating explorer's data)."""

    z: Float[Tensor, "T H"]
    r: Float[Tensor, "T H"]
    candidate: Float[Tensor, "T H"]
    h: Float[Tensor, "T H"]


@torch.no_grad()
@checked
def gru_trace(x_seq: Float[Tensor, "T I"], w: CellWeights) -> GRUTrace:
    """Run the GRU over one sequence ``(T, I)`` and record z, r, candidate and h at every step."""
    if x_seq.ndim != 2:
        raise ValueError(f"x_seq must be one sequence (T, I), got {tuple(x_seq.shape)}")
    h = x_seq.new_zeros(1, w.hidden_size)
    rec = {"z": [], "r": [], "candidate": [], "h": []}
    for t in range(x_seq.shape[0]):
        h, g = gru_cell(x_seq[t:t + 1], h, w, return_gates=True)
        for k in ("z", "r", "candidate"):
            rec[k].append(g[k][0])
        rec["h"].append(h[0])
    return GRUTrace(**{k: torch.stack(v) for k, v in rec.items()})


@checked
@dataclass(frozen=True)
class LSTMTrace:
    """Per-step LSTM internals for one sequence, each ``(T, H)``: input, forget and output gates,
    candidate g, cell state c and hidden state h."""

    i: Float[Tensor, "T H"]
    f: Float[Tensor, "T H"]
    o: Float[Tensor, "T H"]
    g: Float[Tensor, "T H"]
    c: Float[Tensor, "T H"]
    h: Float[Tensor, "T H"]


@torch.no_grad()
@checked
def lstm_trace(x_seq: Float[Tensor, "T I"], w: CellWeights) -> LSTMTrace:
    """Run the LSTM over one sequence ``(T, I)`` and record its gates and states at every step."""
    if x_seq.ndim != 2:
        raise ValueError(f"x_seq must be one sequence (T, I), got {tuple(x_seq.shape)}")
    h = x_seq.new_zeros(1, w.hidden_size)
    c = torch.zeros_like(h)
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in ("i", "f", "o", "g", "c", "h")}
    for t in range(x_seq.shape[0]):
        (h, c), g = lstm_cell(x_seq[t:t + 1], (h, c), w, return_gates=True)
        for k in ("i", "f", "o", "g"):
            rec[k].append(g[k][0])
        rec["c"].append(c[0])
        rec["h"].append(h[0])
    return LSTMTrace(**{k: torch.stack(v) for k, v in rec.items()})


@checked
def holding_units(keep: Float[Tensor, "T H"], start: NonNegInt, *, threshold: Prob = 0.9) -> torch.Tensor:
    """Units that hold their state from step ``start`` on: the indices whose mean *keep* fraction
    over steps ``start..T-1`` is at least ``threshold``.

    ``keep`` is ``(T, H)``: ``1 - z`` for the book's GRU (z near 0 keeps the old state), or the
    forget gate ``f`` for an LSTM.
    """
    if keep.ndim != 2:
        raise ValueError(f"keep must be (T, H), got {tuple(keep.shape)}")
    if not 0 <= start < keep.shape[0]:
        raise ValueError(f"start must be in [0, T={keep.shape[0]}), got {start}")
    return torch.nonzero(keep[start:].mean(dim=0) >= threshold).flatten()


@checked
@dataclass(frozen=True)
class ManualGateTrace:
    """The 1-D toy GRU of the manual-gate mode: inputs, candidates and states, each ``(T,)``."""

    x: Float[Tensor, "T"]
    candidate: Float[Tensor, "T"]
    h: Float[Tensor, "T"]


@checked
def manual_gate_trace(x: Float[Tensor, "T"], z: Prob | Float[Tensor, ""] | Float[Tensor, "T"], r: Prob, *,
                      w_x: Finite = 2.0,
                      u_h: Finite = 1.0, h0: Finite = 0.0) -> ManualGateTrace:
    """A one-unit GRU whose gates are set by hand instead of computed:
    ``h~_t = tanh(w_x x_t + r u_h h_{t-1})``, ``h_t = (1 - z_t) h_{t-1} + z_t h~_t``.

    ``z`` is one value for every step or a ``(T,)`` tensor of per-step values (e.g. open where
    an input arrives, nearly closed elsewhere, as a trained GRU learns to do). With z near 0 the
    state keeps what it holds (memory); with z near 1 it takes the candidate; r near 0 makes the
    candidate ignore the past.
    """
    if x.ndim != 1:
        raise ValueError(f"x must be a 1-D sequence (T,), got {tuple(x.shape)}")
    z_seq = torch.as_tensor(z, dtype=torch.float32).expand(x.shape[0]) if not isinstance(z, torch.Tensor) or z.ndim == 0 else z
    if z_seq.shape != x.shape:
        raise ValueError(f"z must be a number or have the shape of x {tuple(x.shape)}, got {tuple(z_seq.shape)}")
    if not (bool(((z_seq >= 0) & (z_seq <= 1)).all()) and 0.0 <= r <= 1.0):
        raise ValueError(f"gates must lie in [0, 1], got z in [{z_seq.min().item():g}, {z_seq.max().item():g}] and r={r}")
    h = torch.tensor(float(h0))
    cands, hs = [], []
    for x_t, z_t in zip(x, z_seq):
        cand = torch.tanh(w_x * x_t + r * u_h * h)
        h = (1 - z_t) * h + z_t * cand
        cands.append(cand)
        hs.append(h)
    return ManualGateTrace(x.clone(), torch.stack(cands), torch.stack(hs))
