"""A character-level language model with a recurrent network: truncated back-propagation
through time, perplexity and sampling.

Explained in chapter 3, "Language models and sequence-to-sequence". A language model assigns a
probability to the next character given all earlier ones, p(x_t | x_<t); training minimises the
cross-entropy (nats per character) and **perplexity** is its exponential, exp(loss): the number
of equally likely characters the model is, on average, choosing between.

**Truncated BPTT.** The corpus is cut into ``B`` contiguous streams (row ``b`` of
:func:`stream_batches` continues where it left off), read ``bptt`` characters at a time. The
hidden state is carried from one chunk to the next, so the model can use context older than
``bptt``, but it is *detached*: gradients flow back at most ``bptt`` steps (Williams and Peng,
1990). **Teacher forcing**: the input at step t is the true character x_t, never the model's own
guess; only :func:`sample` feeds the model its own outputs.

The data are those of the tiny GPT (:func:`utils.text_data.char_lm_split`: the same corpus,
vocabulary and 90/10 train/validation split), so losses compare directly.

Shapes: B batch (streams), T chunk length (``bptt``), E embedding, H hidden, V vocabulary, N tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import (Float, Int, NonNegFloat, NonNegInt, OneOf, PosFloat, PosInt, Tensor, check, check_ids,
                              checked)
from utils.text_data import CharVocab

__all__ = ["CharRNNLM", "stream_batches", "train_tbptt", "evaluate_lm", "sample", "perplexity"]

State = Float[Tensor, "1 B H"]  # the GRU's hidden state; the LSTM's is a pair (h, c) of them


@checked
class CharRNNLM(nn.Module):
    """Embedding -> GRU (or LSTM) -> linear head over the vocabulary.

    ``forward(idx (B, T), state=None) -> (logits (B, T, V), state)``; pass the returned state to
    the next call to continue the same streams."""

    def __init__(self, vocab_size: PosInt, embed_size: PosInt = 64, hidden_size: PosInt = 256, *,
                 cell: OneOf("gru", "lstm") = "gru") -> None:
        super().__init__()
        self.vocab_size, self.cell = vocab_size, cell
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(embed_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    @checked(dims={"H": "rnn.hidden_size"})
    def forward(self, idx: Int[Tensor, "B T"], state: State | tuple[State, State] | None = None):
        check_ids("idx", idx, self.vocab_size)
        check(state is None or isinstance(state, tuple) == (self.cell == "lstm"), "state",
              "a pair (h, c) for an LSTM, one tensor h for a GRU", type(state).__name__)
        out, state = self.rnn(self.embed(idx), state)  # (B, T, H)
        return self.head(out), state  # (B, T, V)


def _detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


@checked
def stream_batches(data: Int[Tensor, "N"], batch_size: PosInt) -> torch.Tensor:
    """Cut 1-D ids ``(N,)`` into ``batch_size`` contiguous streams ``(B, N // B)`` (the tail that
    does not fill a row is dropped): row b is the b-th piece of the text, read left to right."""
    check(batch_size <= len(data) // 2, "batch_size", f"an int between 1 and N/2 = {len(data) // 2}", batch_size)
    n = len(data) // batch_size
    return data[:n * batch_size].view(batch_size, n)  # (B, N // B)


@checked
def train_tbptt(model: CharRNNLM, data: Int[Tensor, "N"], *, batch_size: PosInt = 32, bptt: PosInt = 64,
                epochs: PosInt = 1, lr: PosFloat = 3e-3, grad_clip: PosFloat = 1.0,
                progress: bool = True) -> list[float]:
    """Train with truncated BPTT and teacher forcing; returns the loss of every chunk (nats/char).

    Per chunk: inputs ``x = streams[:, i:i+T]``, targets ``y = streams[:, i+1:i+T+1]`` (the next
    characters), the state carried over from the previous chunk but detached, Adam with gradient
    clipping. The state is reset to zero at the start of each epoch."""
    check_ids("data", data, model.vocab_size)
    streams = stream_batches(data, batch_size)  # (B, n)
    device = next(model.parameters()).device
    streams = streams.to(device)
    starts = list(range(0, streams.shape[1] - 1, bptt))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * len(starts), desc="training (TBPTT)", leave=False)
    losses = []
    model.train()
    for _ in range(epochs):
        state = None
        for i in starts:
            x = streams[:, i:i + bptt]  # (B, T)
            y = streams[:, i + 1:i + 1 + bptt]  # (B, T) shifted by one
            x = x[:, :y.shape[1]]
            logits, state = model(x, state)
            state = _detach(state)  # keep the value, cut the gradient: truncation
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    if bar is not None:
        bar.close()
    return losses


@torch.no_grad()
@checked
def evaluate_lm(model: CharRNNLM, data: Int[Tensor, "N"], *, batch_size: PosInt = 16, bptt: PosInt = 128,
                carry_state: bool = True) -> float:
    """Mean cross-entropy (nats per character) over every character of ``data`` (1-D ids) read
    as ``batch_size`` streams. ``carry_state=False`` resets the state at every chunk, so the
    model sees at most ``bptt`` characters of context."""
    check_ids("data", data, model.vocab_size)
    streams = stream_batches(data, batch_size).to(next(model.parameters()).device)
    was = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for i in range(0, streams.shape[1] - 1, bptt):
        y = streams[:, i + 1:i + 1 + bptt]
        x = streams[:, i:i + y.shape[1]]
        logits, state = model(x, state if carry_state else None)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was)
    return total / count


@checked
def perplexity(loss_nats: NonNegFloat) -> float:
    """exp(cross-entropy in nats)."""
    return math.exp(loss_nats)


@torch.no_grad()
@checked
def sample(model: CharRNNLM, vocab: CharVocab, prompt: str, length: NonNegInt = 200, *, temperature: PosFloat = 1.0,
           generator: torch.Generator | None = None) -> str:
    """Continue ``prompt`` by ``length`` characters, each drawn from softmax(logits / temperature)
    and fed back as the next input (the model's own output, no teacher any more)."""
    check(prompt != "" and set(prompt) <= set(vocab.chars), "prompt",
          "a non-empty string of the vocabulary's characters (the model needs a first character)", repr(prompt))
    check(len(vocab) == model.vocab_size, "vocab", f"the model's vocabulary of {model.vocab_size} characters",
          f"{len(vocab)} characters")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    idx = torch.tensor([vocab.encode(prompt)], device=device)  # (1, T)
    logits, state = model(idx)  # read the prompt
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)  # (V,)
        nxt = torch.multinomial(probs.cpu(), 1, generator=generator)  # (1,)
        out.append(int(nxt))
        logits, state = model(nxt.view(1, 1).to(device), state)
    model.train(was)
    return prompt + vocab.decode(out)
