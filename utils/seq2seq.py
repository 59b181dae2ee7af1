"""Sequence-to-sequence with recurrent networks: an encoder-decoder GRU, with or without
Bahdanau's additive attention, and the training and evaluation loop shared with the
Transformer encoder-decoder of :mod:`utils.encoder_decoder`.

Explained in chapter 3, "Language models and sequence-to-sequence" (and used again in "The
encoder-decoder Transformer"). The task is one of :func:`utils.data.make_sequence_task` (reverse
or sort a string of digits), with a length drawn per batch so that one model sees many lengths
and can be measured length by length.

* **Seq2seq without attention** (Sutskever et al., 2014; Cho et al., 2014): the encoder's last
  state ``h_S`` is the only thing the decoder knows about the source. It starts the decoder and,
  as in Cho et al., is fed as a fixed context ``c`` at every step.
* **With additive attention** (Bahdanau, Cho and Bengio, 2015): at each output step ``t`` the
  decoder's previous state ``s_{t-1}`` scores every encoder state ``h_j``,

      e_tj = v^T tanh(W s_{t-1} + U h_j),   a_t = softmax_j(e_t),   c_t = sum_j a_tj h_j,

  and the context ``c_t`` changes from step to step.

Both decoders are trained with **teacher forcing**: the input at step ``t`` is the true token
``y_{t-1}`` (a start token ``BOS`` at ``t = 0``), not the model's own guess. At test time
:func:`greedy_decode` feeds back its own predictions.

Shapes: B batch, S source length, T target length, E embedding size, H hidden size, V vocabulary
(the digits 0..V-1; the decoder's input vocabulary adds ``BOS = V``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import (Float, Int, IntIn, NonNegInt, OneOf, PosFloat, PosInt, Seed, Tensor, check, check_ids,
                              checked)
from utils.data import make_sequence_task

__all__ = ["AdditiveAttention", "Seq2SeqGRU", "shift_right", "sample_batch", "train_seq2seq",
           "greedy_decode", "LengthAccuracy", "accuracy_by_length", "teacher_forced_accuracy"]

Task = OneOf("reverse", "sort", "copy")  # the tasks whose output is a digit string as long as the input
Length = IntIn(2, text="a sequence length, an int >= 2")


@checked
class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: ``score(s, h_j) = v^T tanh(W s + U h_j)``.

    A one-hidden-layer network scores each (query, key) pair, where dot-product attention
    (chapter 3.4) uses ``q . k``. The keys are also the values (the encoder states).

    Args:
        query_size: size of the query (the decoder state), H_dec.
        key_size: size of each key (an encoder state), H_enc.
        hidden_size: width A of the scoring network.
    """

    def __init__(self, query_size: PosInt, key_size: PosInt, hidden_size: PosInt) -> None:
        super().__init__()
        self.W = nn.Linear(query_size, hidden_size, bias=False)
        self.U = nn.Linear(key_size, hidden_size, bias=True)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    @checked(dims={"H_dec": "W.in_features", "H_enc": "U.in_features", "A": "U.out_features"})
    def forward(self, query: Float[Tensor, "B H_dec"], keys: Float[Tensor, "B S H_enc"],
                projected_keys: Float[Tensor, "B S A"] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``query (B, H_dec)``, ``keys (B, S, H_enc)`` -> ``(context (B, H_enc), weights (B, S))``.

        ``projected_keys`` may pass ``self.U(keys)`` ``(B, S, A)`` computed once per sequence."""
        Uk = self.U(keys) if projected_keys is None else projected_keys  # (B, S, A)
        scores = self.v(torch.tanh(self.W(query)[:, None, :] + Uk)).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores, dim=-1)  # (B, S)
        context = (weights[:, :, None] * keys).sum(dim=1)  # (B, H_enc)
        return context, weights


@checked
class Seq2SeqGRU(nn.Module):
    """GRU encoder-decoder for digit strings; ``attention=True`` adds Bahdanau attention.

    Encoder: embedding (V -> E), GRU (E -> H) over the source. Decoder: embedding
    (V + 1 -> E, the extra id is ``BOS``), GRU over ``[embedding of y_{t-1}; context]`` whose
    initial state is the encoder's last state, and a linear head on ``[s_t; context]``.
    The context is ``h_S`` at every step without attention, ``c_t`` with it.

    ``forward(src (B, S), tgt_in (B, T)) -> (logits (B, T, V), weights (B, T, S) or None)``.
    """

    def __init__(self, vocab_size: PosInt = 10, embed_size: PosInt = 32, hidden_size: PosInt = 64, *,
                 attention: bool = False) -> None:
        super().__init__()
        self.vocab_size, self.bos = vocab_size, vocab_size
        self.src_emb = nn.Embedding(vocab_size, embed_size)
        self.encoder = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.tgt_emb = nn.Embedding(vocab_size + 1, embed_size)  # + BOS
        self.decoder = nn.GRU(embed_size + hidden_size, hidden_size, batch_first=True)
        self.attention = AdditiveAttention(hidden_size, hidden_size, hidden_size) if attention else None
        self.head = nn.Linear(2 * hidden_size, vocab_size)

    @checked
    def encode(self, src: Int[Tensor, "B S"]) -> tuple[torch.Tensor, torch.Tensor]:
        """``src (B, S)`` -> encoder states ``(B, S, H)`` and last state ``(1, B, H)``."""
        check_ids("src", src, self.vocab_size)
        return self.encoder(self.src_emb(src))

    @checked
    def forward(self, src: Int[Tensor, "B S"], tgt_in: Int[Tensor, "B T"]) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_ids("tgt_in", tgt_in, self.vocab_size + 1)  # + BOS
        states, h = self.encode(src)  # (B, S, H), (1, B, H)
        emb = self.tgt_emb(tgt_in)  # (B, T, E)
        if self.attention is None:  # one fixed context: the whole sequence in one call
            context = h[0][:, None, :].expand(-1, emb.shape[1], -1)  # (B, T, H)
            out, _ = self.decoder(torch.cat([emb, context], dim=-1), h)  # (B, T, H)
            return self.head(torch.cat([out, context], dim=-1)), None
        Uk = self.attention.U(states)  # (B, S, A), the keys' half of the score, once
        outs, contexts, weights = [], [], []
        for t in range(emb.shape[1]):  # attention needs s_{t-1}: step by step
            c, a = self.attention(h[0], states, Uk)  # (B, H), (B, S)
            out, h = self.decoder(torch.cat([emb[:, t], c], dim=-1)[:, None], h)  # (B, 1, H)
            outs.append(out[:, 0]), contexts.append(c), weights.append(a)
        out, context = torch.stack(outs, 1), torch.stack(contexts, 1)  # (B, T, H) each
        return self.head(torch.cat([out, context], dim=-1)), torch.stack(weights, 1)  # (B, T, V), (B, T, S)


@checked
def shift_right(y: Int[Tensor, "B T"], bos: NonNegInt) -> torch.Tensor:
    """Teacher forcing's decoder input: ``[BOS, y_0, ..., y_{T-2}]`` from targets ``y (B, T)``."""
    return torch.cat([torch.full_like(y[:, :1], bos), y[:, :-1]], dim=1)  # (B, T)


@checked
def sample_batch(task: Task, batch_size: PosInt, length: Length, seed: Seed) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of :func:`utils.data.make_sequence_task` (``"reverse"``, ``"sort"`` or ``"copy"``):
    ``src (B, L)`` and targets ``(B, L)``; the same seed gives the same batch."""
    return make_sequence_task(task, batch_size, length, seed=seed)


def _check_model(model: nn.Module) -> None:
    check(hasattr(model, "bos"), "model", "a seq2seq model with a bos attribute (the start token id)",
          type(model).__name__)


def _lr_at(step: int, steps: int, lr: float) -> float:
    warm = max(1, steps // 20)
    if step < warm:
        return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


@checked
def train_seq2seq(model: nn.Module, task: Task = "reverse", *, lengths: tuple[Length, Length] = (4, 16),
                  steps: PosInt = 1500, batch_size: PosInt = 64, lr: PosFloat = 3e-3, grad_clip: PosFloat = 1.0,
                  seed: Seed = 0, progress: bool = True) -> list[float]:
    """Teacher-forced training of any model with ``model(src, tgt_in) -> (logits, weights)`` and a
    ``bos`` attribute (the start token id), such as :class:`Seq2SeqGRU` and
    :class:`utils.encoder_decoder.TransformerSeq2Seq`.

    Each step draws one length ``L`` uniformly from ``lengths`` (inclusive) and a batch of that
    length (seed ``seed * 1_000_003 + step``); Adam, linear warm-up (5 % of the steps) then cosine
    decay, gradient clipping. Returns the training loss (nats per token) of every step."""
    lo, hi = lengths
    check(lo <= hi, "lengths", "(min, max) with 2 <= min <= max", lengths)
    _check_model(model)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"training {type(model).__name__}", leave=False)
    losses = []
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        L = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        src, y = (t.to(device) for t in sample_batch(task, batch_size, L, seed * 1_000_003 + step))
        logits, _ = model(src, shift_right(y, model.bos))  # (B, L, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    if bar is not None:
        bar.close()
    return losses


@torch.no_grad()
@checked
def greedy_decode(model: nn.Module, src: Int[Tensor, "B S"], length: PosInt | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Free-running decoding: start from ``BOS``, feed back the most likely token each step.

    Returns predictions ``(B, T)`` (``T = length``, default the source length) and the attention
    weights of the last decoding pass ``(B, T, S)`` (``None`` for a model without them). Re-runs the
    decoder on the whole prefix each step: simple, and fast enough for T <= 30 (no cache)."""
    _check_model(model)
    T = src.shape[1] if length is None else length
    was = model.training
    model.eval()
    tgt = torch.full((src.shape[0], 1), model.bos, dtype=torch.long, device=src.device)  # (B, 1)
    for _ in range(T):
        logits, weights = model(src, tgt)  # (B, t, V)
        tgt = torch.cat([tgt, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    model.train(was)
    return tgt[:, 1:], weights


@checked
@dataclass
class LengthAccuracy:
    """Greedy-decoding accuracy per source length: ``lengths``, ``token`` (fraction of output
    digits right) and ``sequence`` (fraction of outputs entirely right), lists of equal length."""

    lengths: list[int]
    token: list[float]
    sequence: list[float]


@torch.no_grad()
@checked
def accuracy_by_length(model: nn.Module, task: Task = "reverse", lengths: Sequence[Length] = range(4, 17), *,
                       num_samples: PosInt = 200, seed: Seed = 12345) -> LengthAccuracy:
    """Token and whole-sequence accuracy of :func:`greedy_decode` on ``num_samples`` fresh
    sequences of each length (seed ``seed + length``, distinct from the training seeds)."""
    device = next(model.parameters()).device
    tok, seq = [], []
    for L in lengths:
        src, y = (t.to(device) for t in sample_batch(task, num_samples, L, seed + L))
        pred, _ = greedy_decode(model, src)
        right = pred == y  # (N, L)
        tok.append(right.float().mean().item())
        seq.append(right.all(dim=1).float().mean().item())
    return LengthAccuracy(list(lengths), tok, seq)


@torch.no_grad()
@checked
def teacher_forced_accuracy(model: nn.Module, task: Task, length: Length, *, num_samples: PosInt = 200,
                            seed: Seed = 12345) -> float:
    """Token accuracy when the decoder is fed the *true* previous tokens (as in training), to
    compare with free-running :func:`greedy_decode`: the gap is the cost of feeding back mistakes."""
    _check_model(model)
    was = model.training
    model.eval()
    src, y = sample_batch(task, num_samples, length, seed + length)
    device = next(model.parameters()).device
    logits, _ = model(src.to(device), shift_right(y, model.bos).to(device))
    model.train(was)
    return (logits.argmax(-1).cpu() == y).float().mean().item()
