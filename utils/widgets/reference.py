"""The Python side of the in-browser explorers: what their JavaScript computes, written with the book's code.

The explorers of :mod:`utils.widgets.browser` compute in JavaScript so that they run in the
published book without a kernel. The functions here compute the same numbers in PyTorch, from
the book's own modules (:mod:`utils.conv`, :mod:`utils.rnn`, :mod:`utils.attention`), in
float64; ``tests/test_widgets_browser.py`` types inputs into the explorers in headless Chromium,
reads the rendered numbers and requires them to equal these within 1e-4.

- :func:`conv_reference`: multi-channel convolution with stride, padding, dilation and bias
  (``utils.conv.conv2d_loops``);
- :func:`gate_trace`: a trained GRU or LSTM regressor's gates and states over one sequence,
  optionally with the update gate (GRU) or forget gate (LSTM) of some units clamped
  (``utils.rnn.gru_cell`` and ``lstm_cell``);
- :func:`tiny_transformer_forward`: a :class:`utils.transformer.TinyTransformer` with every
  attention score divided by ``sqrt(d_k) * temperature`` instead of ``sqrt(head_dim)``;
- :func:`qkv_toy` (one 2-D query, keys with their own lengths, values, and the output as their
  convex combination) and :func:`saturation_stats` (random queries and keys of dimension d_k,
  drawn with :func:`mulberry_normal`, the generator the browser also uses).

Shapes: C_in/C_out channels, H/W height/width, K kernel size, T time steps or tokens, H units
(gating), L layers, nh heads, V vocabulary.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from utils.conv import conv2d_loops
from utils.rnn import gru_cell, gru_weights_from_torch, holding_units, lstm_cell, weights_from_torch
from utils.rnn_models import GateView, SequenceRegressor

__all__ = ["conv_reference", "gate_trace", "GateRun", "tiny_transformer_forward", "QKVToy", "qkv_toy",
           "mulberry_uniform", "mulberry_normal", "saturation_stats"]


def conv_reference(inputs, weight, bias=None, *, stride: int = 1, padding: int = 0, dilation: int = 1) -> np.ndarray:
    """``inputs`` ``(C_in, H, W)``, ``weight`` ``(C_out, C_in, K, K)``, ``bias`` ``(C_out,)`` ->
    ``(C_out, H_out, W_out)`` in float64, computed by :func:`utils.conv.conv2d_loops`."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
    w = torch.as_tensor(np.asarray(weight, dtype=np.float64))
    if x.ndim != 3:
        raise ValueError(f"inputs must have shape (C_in, H, W), got {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"weight must have shape (C_out, C_in, K, K), got {tuple(w.shape)}")
    b = None if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.float64))
    return conv2d_loops(x[None], w, b, stride=stride, padding=padding, dilation=dilation)[0].numpy()


@dataclass(frozen=True)
class GateRun:
    """:func:`gate_trace`'s result: ``view`` (gates and states, as :func:`utils.rnn_models.trace_model`
    returns them), the running read-out ``head(h_t)`` ``(T,)``, the holder units and the clamp used."""

    view: GateView
    readout: np.ndarray
    holders: list[int]
    clamped_units: tuple[int, ...]
    clamp_value: float | None
    clamp_from: int


@torch.no_grad()
def gate_trace(model: SequenceRegressor, x_seq: torch.Tensor, *, clamp_units=(), clamp_value: float | None = None,
               clamp_from: int = 0) -> GateRun:
    """Run a trained GRU or LSTM regressor over one sequence ``(T, 2)`` in float64, with the
    book's cells, and record gates, states and the running read-out ``head(h_t)``.

    With ``clamp_units`` and ``clamp_value``, from step ``clamp_from`` on the gate that decides
    what a unit keeps is forced to ``clamp_value`` for those units: the GRU's update gate z (book
    convention: z = 1 takes the candidate, so the unit forgets) or the LSTM's forget gate f
    (f = 0 forgets). The candidate and the other gates are computed as usual. ``holders`` lists
    the units that keep at least 90% of their state per step after the first marker
    (:func:`utils.rnn.holding_units`); it is left empty for a clamped run.
    """
    if model.cell not in ("gru", "lstm"):
        raise ValueError(f"model must be a gated regressor ('gru' or 'lstm'), got {model.cell!r}")
    x_seq = torch.as_tensor(x_seq, dtype=torch.float64)
    if x_seq.ndim != 2 or x_seq.shape[1] != model.rnn.input_size:
        raise ValueError(f"x_seq must have shape (T, I={model.rnn.input_size}), got {tuple(x_seq.shape)}")
    units = tuple(int(u) for u in clamp_units)
    H = model.rnn.hidden_size
    if any(not 0 <= u < H for u in units):
        raise ValueError(f"clamp_units must be unit indices in [0, {H}), got {units}")
    if units and (clamp_value is None or not 0.0 <= clamp_value <= 1.0):
        raise ValueError(f"clamp_value must be a gate value in [0, 1] when units are clamped, got {clamp_value!r}")
    w = gru_weights_from_torch(model.rnn) if model.cell == "gru" else weights_from_torch(model.rnn)
    w = type(w)(*(t.double() for t in (w.W_ih, w.W_hh, w.b_ih, w.b_hh)))
    head_w, head_b = model.head.weight.double()[0], model.head.bias.double()[0]
    idx = torch.tensor(units, dtype=torch.long)
    h = torch.zeros(1, H, dtype=torch.float64)
    c = torch.zeros_like(h)
    names = ("z", "r", "candidate", "h") if model.cell == "gru" else ("i", "f", "o", "c", "h")
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    readout = []
    for t in range(x_seq.shape[0]):
        x_t = x_seq[t:t + 1]  # (1, I)
        clamp = bool(units) and t >= clamp_from
        if model.cell == "gru":
            _, g = gru_cell(x_t, h, w, return_gates=True)
            z = g["z"].clone()
            if clamp:
                z[0, idx] = clamp_value
            h = (1 - z) * h + z * g["candidate"]  # the GRU update with the (clamped) update gate
            for k, v in (("z", z), ("r", g["r"]), ("candidate", g["candidate"]), ("h", h)):
                rec[k].append(v[0])
        else:
            _, g = lstm_cell(x_t, (h, c), w, return_gates=True)
            f = g["f"].clone()
            if clamp:
                f[0, idx] = clamp_value
            c = f * c + g["i"] * g["g"]  # the LSTM update with the (clamped) forget gate
            h = g["o"] * torch.tanh(c)
            for k, v in (("i", g["i"]), ("f", f), ("o", g["o"]), ("c", c), ("h", h)):
                rec[k].append(v[0])
        readout.append(float(h[0] @ head_w + head_b))
    arrays = {k: torch.stack(v).numpy() for k, v in rec.items()}  # each (T, H)
    if model.cell == "gru":
        panels = {"update z": arrays["z"], "reset r": arrays["r"], "candidate": arrays["candidate"],
                  "hidden h": arrays["h"]}
        keep = 1 - arrays["z"]
    else:
        panels = {"input i": arrays["i"], "forget f": arrays["f"], "output o": arrays["o"], "cell c": arrays["c"],
                  "hidden h": arrays["h"]}
        keep = arrays["f"]
    marked = torch.nonzero(x_seq[:, 1] > 0.5).flatten()
    start = int(marked[0]) if len(marked) else 0
    holders = [] if units else holding_units(torch.from_numpy(keep), start).tolist()
    view = GateView(model.cell, panels, keep, readout[-1])
    return GateRun(view, np.array(readout), holders, units, clamp_value if units else None, clamp_from)


@torch.no_grad()
def tiny_transformer_forward(model, idx, *, temperature: float = 1.0, d_k: float | None = None):
    """Logits and attention weights of a :class:`utils.transformer.TinyTransformer` in float64, with
    every attention score divided by ``sqrt(d_k) * temperature`` in every layer (``d_k`` defaults
    to the head size and ``temperature`` to 1: then this is ``model.forward_with_attention``, tested).

    ``idx``: one sequence ``(T,)`` -> logits ``(T, V)``, weights ``(L, nh, T, T)``; or a batch
    ``(B, T)`` -> ``(B, T, V)`` and ``(B, L, nh, T, T)``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    m = copy.deepcopy(model).double().eval()
    cfg = m.config
    hs = cfg.d_model // cfg.num_heads
    d_k = float(hs if d_k is None else d_k)
    if not d_k > 0:
        raise ValueError(f"d_k must be positive, got {d_k!r}")
    idx = torch.as_tensor(idx, dtype=torch.long)
    single = idx.ndim == 1
    batch = idx[None] if single else idx  # (B, T)
    if batch.ndim != 2 or not 0 < batch.shape[1] <= cfg.max_len:
        raise ValueError(f"idx must be a sequence (T,) or a batch (B, T) with 1 <= T <= {cfg.max_len}, "
                         f"got shape {tuple(idx.shape)}")
    x = m.pos(m.tok_emb(batch))  # (B, T, C)
    maps = []
    for block in m.blocks:
        mha = block.self_attn

        def attend(inp):
            q, k, v = (mha._split_heads(F.linear(inp, w, b))  # each (B, nh, T, hs)
                       for w, b in zip(mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3)))
            weights = torch.softmax(q @ k.transpose(-2, -1) / (math.sqrt(d_k) * temperature), dim=-1)  # (B, nh, T, T)
            out = (weights @ v).transpose(1, 2).reshape(inp.shape)  # (B, T, C)
            return mha.out_proj(out), weights

        if block.norm_first:
            a, w = attend(block.norm1(x))
            x = x + a
            x = x + block._ff(block.norm2(x))
        else:
            a, w = attend(x)
            x = block.norm1(x + a)
            x = block.norm2(x + block._ff(x))
        maps.append(w)
    logits = m.head(m.norm(x))  # (B, T, V)
    weights = torch.stack(maps, dim=1)  # (B, L, nh, T, T)
    if single:
        return logits[0].numpy(), weights[0].numpy()
    return logits.numpy(), weights.numpy()


@dataclass(frozen=True)
class QKVToy:
    """The Q/K/V toy in 2-D: ``query`` ``(2,)``, ``keys`` and ``values`` ``(K, 2)``, scores and
    weights ``(K,)`` and the ``output`` ``(2,)`` = weights @ values, a convex combination."""

    query: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    output: np.ndarray
    scale: float


def _unit(deg: float) -> np.ndarray:
    return np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))])


def qkv_toy(q_angle: float, q_length: float, key_angles, key_lengths, values, *, temperature: float = 1.0) -> QKVToy:
    """Scores ``q . k_j / (sqrt(2) * temperature)``, their softmax and the output ``sum_j a_j v_j``.

    Each key has its own length, so a long key pointing away from the query can outscore a short
    one pointing along it: a dot product is not a cosine similarity.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    key_angles, key_lengths = list(key_angles), list(key_lengths)
    V = np.asarray(values, dtype=np.float64)
    if len(key_angles) != len(key_lengths) or V.shape != (len(key_angles), 2):
        raise ValueError(f"need one length and one 2-D value per key: {len(key_angles)} angles, "
                         f"{len(key_lengths)} lengths, values of shape {V.shape}")
    q = q_length * _unit(q_angle)  # (2,)
    Kmat = np.stack([l * _unit(a) for a, l in zip(key_angles, key_lengths)])  # (K, 2)
    scale = 1.0 / (math.sqrt(2) * temperature)
    scores = scale * Kmat @ q  # (K,)
    weights = torch.softmax(torch.from_numpy(scores), dim=0).numpy()
    return QKVToy(q, Kmat, V, scores, weights, weights @ V, scale)


def mulberry_uniform(seed: int, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1) from the mulberry32 generator (the one ``attention.js`` uses)."""
    a = (np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & np.uint64(0xFFFFFFFF)
    M = np.uint64(0xFFFFFFFF)
    t = ((a ^ (a >> np.uint64(15))) * (a | np.uint64(1))) & M
    t = ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & M)) & M) ^ t
    return ((t ^ (t >> np.uint64(14))) & M).astype(np.float64) / 4294967296.0


def mulberry_normal(seed: int, n: int) -> np.ndarray:
    """``n`` standard normals: Box-Muller on pairs of :func:`mulberry_uniform` draws (cosine branch)."""
    u = mulberry_uniform(seed, 2 * n).reshape(n, 2)
    return np.sqrt(-2.0 * np.log(1.0 - u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])


def saturation_stats(d_k: int, *, seed: int = 0, T: int = 16, S: int = 32) -> dict[str, dict[str, float]]:
    """The measurement of chapter 40 for one ``d_k``: ``T`` queries and ``S`` keys with N(0, 1)
    entries; for the scaled (``/ sqrt(d_k)``) and unscaled scores, their standard deviation, the
    mean largest weight of a row and the mean row entropy (nats)."""
    if isinstance(d_k, bool) or not isinstance(d_k, (int, np.integer)) or d_k < 1:
        raise ValueError(f"d_k must be a positive int, got {d_k!r}")
    z = mulberry_normal(seed, (T + S) * d_k)
    q, k = z[: T * d_k].reshape(T, d_k), z[T * d_k:].reshape(S, d_k)
    raw = q @ k.T  # (T, S)
    out = {}
    for name, scores in (("scaled", raw / math.sqrt(d_k)), ("unscaled", raw)):
        w = torch.softmax(torch.from_numpy(scores), dim=-1).numpy()
        entropy = -(w * np.log(np.clip(w, 1e-300, None))).sum(-1).mean()
        out[name] = {"std": float(scores.std(ddof=1)), "max_weight": float(w.max(-1).mean()),
                     "entropy": float(entropy)}
    return out
