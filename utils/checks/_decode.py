"""The decoding-loop check of lab 6 (:func:`utils.checks.gpt.check_generate_text`), in three parts.

1. A counting model predicts "last token + 1" and records every context it is fed: the output's
   shape, the prompt, the cropping (``block_size - 1``, the last token only, from the start, no
   cropping) and the position whose logits are used must all be right.
2. A model with one fixed next-token distribution is sampled 4,000 times per setting with a seeded
   generator; the counts must follow the exact filtered distribution (temperature, top-k, top-p)
   within 6 standard deviations, and tokens the filters remove must never appear. Known wrong
   distributions (greedy argmax, a filter argument ignored, a second softmax) name the mistake.
3. Two runs with the same seeded generator must agree whatever the global random state, and runs
   with different seeds must differ: the generator passed in is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, CheckResult, call_learner, describe, explain_mismatch
from utils.sampling import filter_distribution

__all__ = ["structure_verdict", "sampling_verdict", "generator_verdict", "DRAWS"]


def filter_reference(logits, temperature=1.0, top_k=None, top_p=None):
    return filter_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p).after


class _CountingModel(nn.Module):
    """Predicts (last token + 1) mod V with near certainty at every position; records each context
    it is given, and refuses contexts longer than ``block_size`` as a GPT does."""

    def __init__(self, vocab_size: int = 9, block_size: int = 4) -> None:
        super().__init__()
        self.V, self.block_size, self.contexts = vocab_size, block_size, []
        self.config = SimpleNamespace(block_size=block_size, vocab_size=vocab_size)
        self.anchor = nn.Parameter(torch.zeros(()))  # so that next(model.parameters()) works

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a (B, T) tensor of token ids (int64), got {describe(idx)}")
        self.contexts.append(idx.detach().clone())
        if idx.shape[1] > self.block_size:
            raise ValueError(f"context of {idx.shape[1]} tokens exceeds block_size={self.block_size}")
        return F.one_hot((idx + 1) % self.V, self.V).float() * 20.0 + 0 * self.anchor  # (B, T, V)


class _FixedModel(nn.Module):
    """The same next-token logits ``(V,)`` at every position, whatever the context."""

    def __init__(self, logits: torch.Tensor, block_size: int = 4) -> None:
        super().__init__()
        self.register_buffer("row", logits)
        self.block_size = block_size
        self.config = SimpleNamespace(block_size=block_size, vocab_size=len(logits))
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got {describe(idx)}")
        if idx.shape[1] > self.block_size:
            raise ValueError(f"context of {idx.shape[1]} tokens exceeds block_size={self.block_size}")
        return self.row.expand(idx.shape[0], idx.shape[1], -1) + 0 * self.anchor  # (B, T, V)


_ROW = torch.tensor([2.1, 1.6, 1.2, 0.7, 0.1, -0.4, -1.0, -2.2])
DRAWS = 4000
_SETTINGS = [  # (description, temperature, top_k, top_p)
    ("temperature 1.0, no filter", 1.0, None, None),
    ("temperature 0.5", 0.5, None, None),
    ("top_k=3", 1.0, 3, None),
    ("top_p=0.7", 1.0, None, 0.7),
    ("temperature 1.5, top_k=5, top_p=0.9", 1.5, 5, 0.9),
]


def _call_generate(name, fn, model, idx, n, block_size, *, case, generator, temperature=1.0, top_k=None, top_p=None):
    return call_learner(name, fn, [model, idx.clone(), n, block_size],
                        dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator), case=case)


def _context_problem(contexts: list[torch.Tensor], out: torch.Tensor, T0: int, n: int, block_size: int) -> str | None:
    want = [out[:, :T0 + i][:, -block_size:] for i in range(n + 1)]
    if len(contexts) == n + 1 and torch.equal(contexts[-1], want[-1]):
        contexts = contexts[:n]  # one last call after the last token: wasted, not wrong
    if len(contexts) != n:
        return f"the model was called {len(contexts)} times for {n} new tokens: call it once per new token"
    for i, (got, exp) in enumerate(zip(contexts, want)):
        if got.shape == exp.shape and torch.equal(got, exp):
            continue
        lengths = [c.shape[1] for c in contexts]
        if all(length == 1 for length in lengths):
            return "only the last token is fed to the model: feed the last block_size tokens, idx[:, -block_size:]"
        if got.shape[1] == block_size - 1 and exp.shape[1] == block_size:
            return ("the context is cropped to block_size - 1 tokens: idx[:, -block_size:] keeps the last "
                    "block_size tokens")
        full = out[:, :T0 + i]
        if got.shape[1] == min(block_size, full.shape[1]) and torch.equal(got, full[:, :got.shape[1]]):
            return "the context is cropped from the start: keep the LAST block_size tokens, idx[:, -block_size:]"
        if got.shape[1] <= T0 and torch.equal(got, out[:, :T0][:, -got.shape[1]:]) and i > 0:
            return "the new tokens are not appended to the context: idx = torch.cat([idx, next_token], dim=1)"
        return (f"at step {i} the model was fed {tuple(got.shape)} tokens, expected the last block_size tokens "
                f"{tuple(exp.shape)}: crop with idx[:, -block_size:]")
    return None


def structure_verdict(name: str, fn: Callable) -> CheckResult | None:
    model = _CountingModel()
    idx = torch.tensor([[0, 1], [5, 6]])
    out, failed = _call_generate(name, fn, model, idx, 6, 4, case="counting model, 6 new tokens, block_size 4",
                                 generator=torch.Generator().manual_seed(0))
    if failed is not None:
        if "exceeds block_size" in failed.message:
            failed = CheckResult(name, FAIL, "the context is not cropped: feed only the last block_size tokens, "
                                             "idx[:, -block_size:], to the model")
        return failed
    lead = "with a model that always predicts 'last token + 1': "
    expected = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 8, 0, 1, 2, 3]])
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        if isinstance(out, torch.Tensor) and out.shape == (2, 6):
            msg = "return the prompt followed by the new tokens, shape (B, T + max_new_tokens), not only the new ones"
        else:
            msg = f"expected ids of shape (B, T + max_new_tokens) = (2, 8), got {describe(out)}"
        return CheckResult(name, FAIL, lead + msg)
    msg = explain_mismatch(expected, out, what="generated ids")
    if msg is not None and "integer" in msg:
        return CheckResult(name, FAIL, lead + msg + " (token ids are int64: append the sampled ids as they come)")
    if not torch.equal(out[:, :2], idx):
        return CheckResult(name, FAIL, lead + "the prompt must come back unchanged at the start of the output")
    problem = _context_problem(model.contexts, out, 2, 6, 4)
    if problem:
        return CheckResult(name, FAIL, lead + problem)
    if msg is not None:
        if torch.equal(out[:, 2], idx[:, 1]):
            msg = "the next token must come from the logits at the LAST position, logits[:, -1, :]"
        else:  # the loop is right but the tokens are not: the sampling says why
            sampling = sampling_verdict(name, fn)
            if sampling is not None:
                return sampling
        return CheckResult(name, FAIL, lead + msg)
    return None


def _count_problem(counts: torch.Tensor, p: torch.Tensor, n: int) -> float:
    """The largest deviation of ``counts`` from ``n * p`` in standard deviations (inf for an impossible token)."""
    if ((counts > 0) & (p == 0)).any():
        return math.inf
    sd = (n * p * (1 - p)).clamp(min=1e-12).sqrt()
    return ((counts - n * p).abs() / sd).max().item()


def sampling_verdict(name: str, fn: Callable) -> CheckResult | None:
    for desc, T, k, p in _SETTINGS:
        model = _FixedModel(_ROW.clone())
        idx = torch.zeros(DRAWS, 1, dtype=torch.long)
        out, failed = _call_generate(name, fn, model, idx, 1, 4, case=f"{DRAWS} draws, {desc}",
                                     generator=torch.Generator().manual_seed(11), temperature=T, top_k=k, top_p=p)
        if failed is not None:
            return failed
        if not isinstance(out, torch.Tensor) or out.shape != (DRAWS, 2) or out.is_floating_point():
            return CheckResult(name, FAIL, f"with {DRAWS} prompts of one token and 1 new token, expected int64 ids of "
                                           f"shape ({DRAWS}, 2), got {describe(out)}")
        new = out[:, 1].long().cpu()
        V = len(_ROW)
        if (new < 0).any() or (new >= V).any():
            return CheckResult(name, FAIL, f"sampled ids outside the vocabulary [0, {V}): {new.unique().tolist()[:8]}")
        counts = torch.bincount(new, minlength=V).double()
        exact = filter_reference(_ROW.double(), T, k, p)
        if _count_problem(counts, exact, DRAWS) <= 6.0:
            continue
        candidates = [
            (F.one_hot(_ROW.argmax(), V).double(), "the most likely token is always taken (argmax): draw one with "
                                                   "torch.multinomial(probs, 1, generator=generator)"),
            (filter_reference(_ROW.double(), 1.0, k, p), "the temperature is ignored: pass it on to filter_logits"),
            (filter_reference(_ROW.double(), 1.0 / T, k, p) if T != 1.0 else None,
             "the temperature multiplies the logits: pass it on to filter_logits, which divides by it"),
            (filter_reference(_ROW.double(), T, None, p) if k is not None else None,
             "tokens outside the top_k were drawn: pass top_k on to filter_logits"),
            (filter_reference(_ROW.double(), T, k, None) if p is not None else None,
             "tokens outside the top-p set were drawn: pass top_p on to filter_logits"),
            (filter_reference(_ROW.double(), T, None, None) if (k or p) else None,
             "top_k and top_p are ignored: pass them on to filter_logits"),
            (filter_reference(_ROW.double()).softmax(-1), "the softmax is taken twice: sample from the probabilities "
                                                          "that filter_logits returns"),
        ]
        for cand, why in candidates:
            if cand is not None and _count_problem(counts, cand, DRAWS) <= 6.0:
                return CheckResult(name, FAIL, f"on {DRAWS} draws with {desc}: {why}")
        freq = (counts / DRAWS).tolist()
        worst = int(((counts / DRAWS) - exact).abs().argmax())
        return CheckResult(name, FAIL, f"on {DRAWS} draws with {desc}: the drawn tokens do not follow the filtered "
                                       f"distribution (token {worst}: drawn {freq[worst]:.1%} of the time, probability "
                                       f"{exact[worst].item():.1%}); does your filter_logits pass its check?")
    return None


def generator_verdict(name: str, fn: Callable) -> CheckResult | None:
    idx = torch.zeros(200, 1, dtype=torch.long)
    outs = []
    for global_seed, seed in ((1, 5), (2, 5), (1, 6)):
        torch.manual_seed(global_seed)
        out, failed = _call_generate(name, fn, _FixedModel(_ROW.clone()), idx, 3, 4, case="a seeded generator",
                                     generator=torch.Generator().manual_seed(seed))
        if failed is not None:
            return failed
        outs.append(out)
    if not all(isinstance(o, torch.Tensor) and o.shape == outs[0].shape for o in outs):
        return CheckResult(name, FAIL, f"the output's shape changes from run to run: {describe(outs[0])}")
    if not torch.equal(outs[0], outs[1]):
        return CheckResult(name, FAIL, "the generator is ignored: two runs with the same seeded generator give "
                                       "different text; pass generator=generator to torch.multinomial")
    if torch.equal(outs[0], outs[2]):
        return CheckResult(name, FAIL, "the generator passed in is ignored: generators with different seeds give the "
                                       "same text; pass generator=generator to torch.multinomial")
    return None
