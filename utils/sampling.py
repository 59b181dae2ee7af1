"""Decoding a language model: greedy, temperature, top-k and top-p (nucleus) sampling.

Explained in chapter 4, "Pretraining a tiny GPT"; the sampling widget draws what
:func:`filter_distribution` returns. Works with any model mapping ``(B, T)`` token ids to
``(B, T, V)`` logits (our :class:`utils.gpt.GPT`, or a ``transformers`` model through a lambda).

The filters follow the usual order (as in ``transformers``' logits processors): divide the
logits by the temperature, keep the ``top_k`` largest, then keep the smallest set of tokens
whose probabilities add up to at least ``top_p``, and renormalise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from utils._validate import Float, FloatIn, Int, NonNegInt, PosFloat, PosInt, Tensor, checked

TopP = FloatIn(0.0, 1.0, lo_open=True, text="a probability mass in (0, 1]")

__all__ = ["Filtered", "filter_distribution", "sample_next", "generate"]


def _check(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy decoding for the limit 0), got {temperature}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p}")


@checked
@dataclass(frozen=True)
class Filtered:
    """Next-token distributions ``(..., V)``: ``before`` (softmax of the raw logits), ``tempered``
    (after the temperature) and ``after`` (after top-k and top-p, renormalised)."""

    before: Float[Tensor, "... V"]
    tempered: Float[Tensor, "... V"]
    after: Float[Tensor, "... V"]


@checked
def filter_distribution(logits: Float[Tensor, "... V"], *, temperature: PosFloat = 1.0, top_k: PosInt | None = None,
                        top_p: TopP | None = None) -> Filtered:
    """Apply temperature, top-k and top-p to ``logits (..., V)``; see the module docstring."""
    _check(temperature, top_k, top_p)
    if logits.ndim < 1:
        raise ValueError("logits must have a vocabulary axis (..., V)")
    before = logits.softmax(dim=-1)
    scaled = logits / temperature
    tempered = scaled.softmax(dim=-1)
    keep = torch.ones_like(scaled, dtype=torch.bool)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest logit
        keep &= scaled >= kth
    if top_p is not None and top_p < 1.0:
        probs = scaled.masked_fill(~keep, float("-inf")).softmax(dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(dim=-1) - sorted_p  # probability of the tokens ranked above
        keep_sorted = mass_before < top_p  # the top token is always kept
        keep &= torch.zeros_like(keep).scatter(-1, order, keep_sorted)
    after = scaled.masked_fill(~keep, float("-inf")).softmax(dim=-1)
    return Filtered(before, tempered, after)


@checked
def sample_next(logits: Float[Tensor, "B V"], *, temperature: PosFloat = 1.0, top_k: PosInt | None = None,
                top_p: TopP | None = None, greedy: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``logits (B, V)`` -> ``(B, 1)``; ``greedy`` takes the argmax."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (B, V), got shape {tuple(logits.shape)}")
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)
    probs = filter_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p).after
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
@checked
def generate(model: Callable[[torch.Tensor], torch.Tensor], idx: Int[Tensor, "B T"], max_new_tokens: NonNegInt, *,
             block_size: PosInt, temperature: PosFloat = 1.0, top_k: PosInt | None = None, top_p: TopP | None = None,
             greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend ``idx (B, T)`` by ``max_new_tokens`` tokens, feeding at most the last ``block_size``
    tokens back each step; returns ``(B, T + max_new_tokens)``."""
    if idx.ndim != 2:
        raise ValueError(f"idx must be (B, T), got shape {tuple(idx.shape)}")
    _check(temperature, top_k, top_p)
    for _ in range(max_new_tokens):
        logits = model(idx[:, -block_size:])[:, -1, :]  # (B, V): the distribution of the next token
        nxt = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                          generator=generator)
        idx = torch.cat([idx, nxt.to(idx.device)], dim=1)
    return idx
