"""Recurrent models for the memory experiments of chapter 3, "Recurrent networks and gates".

A tanh RNN, a GRU and an LSTM with the same interface, so that the chapter can train all three on
the adding problem and measure how far back their gradients reach. The cells themselves are
PyTorch's (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``); the from-scratch versions live in
:mod:`utils.rnn` and are tested equal to these.

Shapes: B batch, T time steps, I input features, H hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import re

import numpy as np
import torch
from torch import nn

from utils._validate import Float, OneOf, PosFloat, PosInt, Real, Seed, Tensor, check, checked
from utils.rnn import gru_trace, gru_weights_from_torch, lstm_trace, weights_from_torch

__all__ = ["CELL_TYPES", "SequenceRegressor", "MemoryRun", "train_regressor", "input_gradient_norms",
           "early_gradient_profile", "GateView", "trace_model", "parse_adding_sequence"]

CELL_TYPES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@checked
class SequenceRegressor(nn.Module):
    """A recurrent layer read out by a linear head at the last step: ``(B, T, I) -> (B,)``.

    Args:
        cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
        input_size: I, the features per time step.
        hidden_size: H.
    """

    def __init__(self, cell: OneOf("rnn", "gru", "lstm"), input_size: PosInt, hidden_size: PosInt) -> None:
        super().__init__()
        if cell not in CELL_TYPES:
            raise ValueError(f"cell must be one of {sorted(CELL_TYPES)}, got {cell!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.cell = cell
        self.rnn = CELL_TYPES[cell](input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    @checked(dims={"I": "rnn.input_size"})
    def hidden_states(self, X: Float[Tensor, "B T I"]) -> torch.Tensor:
        """All hidden states ``(B, T, H)``; the initial state is zeros (PyTorch's default)."""
        if X.ndim != 3 or X.shape[-1] != self.rnn.input_size:
            raise ValueError(f"X must have shape (B, T, I={self.rnn.input_size}), got {tuple(X.shape)}")
        out, _ = self.rnn(X)  # (B, T, H); the state tuple (h_T[, c_T]) is not needed
        return out

    @checked(dims={"I": "rnn.input_size"})
    def forward(self, X: Float[Tensor, "B T I"]) -> torch.Tensor:
        return self.head(self.hidden_states(X)[:, -1]).squeeze(-1)  # (B, H) -> (B,)


@checked
@dataclass
class MemoryRun:
    """Result of :func:`train_regressor`: per-epoch test MSE and the wall time in seconds."""

    cell: str
    test_mse: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _mse(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return nn.functional.mse_loss(model(X), y).item()


@checked
def train_regressor(model: SequenceRegressor, X: Float[Tensor, "N T I"], y: Float[Tensor, "N"],
                    X_test: Float[Tensor, "M T I"], y_test: Float[Tensor, "M"], *, epochs: PosInt = 12,
                    batch_size: PosInt = 64, lr: PosFloat = 3e-3, clip: PosFloat = 1.0, seed: Seed = 0,
                    progress: bool = True) -> MemoryRun:
    """Train with Adam on the MSE, clipping the gradient norm at ``clip`` (the standard cure for
    exploding gradients), and record the test MSE after every epoch (index 0: before training).
    ``progress`` draws a ``tqdm.auto`` bar over all batches."""
    if X.shape[0] != y.shape[0] or X_test.shape[0] != y_test.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]} "
                         f"(train), {X_test.shape[0]} and {y_test.shape[0]} (test)")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run = MemoryRun(model.cell, [_mse(model, X_test, y_test)])
    start = perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=epochs * -(-len(X) // batch_size), desc=f"training {model.cell}", leave=False,
               disable=not progress)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(batch_size):
            loss = nn.functional.mse_loss(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            bar.update(1)
        run.test_mse.append(_mse(model, X_test, y_test))
    bar.close()
    run.seconds = perf_counter() - start
    return run


@checked
def input_gradient_norms(model: SequenceRegressor, X: Float[Tensor, "B T I"]) -> torch.Tensor:
    """How much the last hidden state depends on each input: ``||d h_T / d x_t||`` for every t.

    Returns ``(T,)``: the norm (over units and features) of the gradient of ``sum(h_T)`` with
    respect to ``x_t``, averaged over the batch. Small values at small t mean that the first
    inputs can no longer change the output: the gradient has vanished.
    """
    X = X.detach().clone().requires_grad_(True)
    h_last = model.hidden_states(X)[:, -1]  # (B, H)
    (grad,) = torch.autograd.grad(h_last.sum(), X)  # (B, T, I)
    return grad.norm(dim=-1).mean(dim=0)  # (T,)


@checked
def early_gradient_profile(model: SequenceRegressor, lengths: list[PosInt], *, batch_size: PosInt = 16,
                           seed: Seed = 0) -> list[float]:
    """``||d h_T / d x_1||`` for sequences of each length T (uniform random inputs, fixed seed)."""
    check(len(lengths) > 0, "lengths", "a non-empty list of sequence lengths", lengths)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for T in lengths:
        X = torch.rand(batch_size, T, model.rnn.input_size, generator=gen)
        out.append(input_gradient_norms(model, X)[0].item())
    return out


@checked
@dataclass(frozen=True)
class GateView:
    """What the gating explorer shows for one sequence: ``panels`` maps a name (``"update z"``,
    ``"reset r"``, ``"candidate"``, ``"hidden h"``; or the LSTM's ``"input i"``, ``"forget f"``,
    ``"output o"``, ``"cell c"``, ``"hidden h"``) to a ``(T, H)`` array; ``keep`` is the fraction of
    the old state each unit keeps per step (GRU ``1 - z``, LSTM ``f``); ``prediction`` the model's
    output."""

    cell: str
    panels: dict[str, np.ndarray]
    keep: np.ndarray
    prediction: float


@checked
def trace_model(model: SequenceRegressor, x_seq: Real[Tensor, "T I"]) -> GateView:
    """Run a trained GRU or LSTM regressor's own weights through the from-scratch cells of
    :mod:`utils.rnn` on one sequence ``(T, I)`` and collect gates and states."""
    if model.cell not in ("gru", "lstm"):
        raise ValueError(f"trace_model needs a gated model ('gru' or 'lstm'), got {model.cell!r}")
    if x_seq.ndim != 2 or x_seq.shape[1] != model.rnn.input_size:
        raise ValueError(f"x_seq must have shape (T, I={model.rnn.input_size}), got {tuple(x_seq.shape)}")
    x_seq = x_seq.float()
    with torch.no_grad():
        prediction = model(x_seq[None]).item()
    if model.cell == "gru":
        tr = gru_trace(x_seq, gru_weights_from_torch(model.rnn))
        panels = {"update z": tr.z, "reset r": tr.r, "candidate": tr.candidate, "hidden h": tr.h}
        keep = 1 - tr.z
    else:
        tr = lstm_trace(x_seq, weights_from_torch(model.rnn))
        panels = {"input i": tr.i, "forget f": tr.f, "output o": tr.o, "cell c": tr.c, "hidden h": tr.h}
        keep = tr.f
    return GateView(model.cell, {k: v.numpy() for k, v in panels.items()}, keep.numpy(), prediction)


@checked
def parse_adding_sequence(text: str) -> tuple[torch.Tensor, float]:
    """A typed adding-problem sequence -> ``(X (T, 2), target)``.

    Digits 0-9 stand for the values 0.0-0.9; a digit in square brackets is marked. Exactly two
    digits must be marked, e.g. ``"31[7]2 0 5[4]8"`` has target 0.7 + 0.4 = 1.1. Spaces are ignored.
    """
    tokens = re.findall(r"\[\d\]|\d|\S", text)
    bad = [t for t in tokens if not re.fullmatch(r"\[\d\]|\d", t)]
    if bad:
        raise ValueError(f"text must hold digits 0-9, two of them marked with brackets like [7]; "
                         f"cannot read {bad[0]!r}")
    if len(tokens) < 2:
        raise ValueError("text must hold at least two digits")
    marks = [t.startswith("[") for t in tokens]
    if sum(marks) != 2:
        raise ValueError(f"text must mark exactly two digits with brackets, got {sum(marks)} marked")
    digits = [int(t.strip("[]")) for t in tokens]
    values = torch.tensor(digits, dtype=torch.float32) / 10
    X = torch.stack([values, torch.tensor(marks, dtype=torch.float32)], dim=1)  # (T, 2)
    return X, sum(d for d, m in zip(digits, marks) if m) / 10
