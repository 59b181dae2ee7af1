"""Checkers for the lab "Fine-tune a pretrained encoder" (``labs/05_finetune_encoder.ipynb``).

Each check runs the learner's code on fixed cases, compares with the reference in
:mod:`utils.pretrained` / :mod:`utils.finetune` and, when a case fails, tries the usual
mistakes -- padding tokens counted in the average, the division missing, a pooled vector
that keeps the token axis, probabilities instead of logits, the first token instead of the
mean, gradients left to accumulate -- so the verdict names the likely bug.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, PASS, TODO, CheckResult, _report, call_learner, check_threshold, explain_mismatch
from utils.pretrained import mean_pool

__all__ = [
    "check_mean_pool",
    "check_classification_head",
    "check_train_step",
    "check_test_accuracy",
    "head_reference",
    "train_step_reference",
]


# ---------------------------------------------------------------------------- mean pooling
def _pool_cases() -> list[tuple[str, tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    lengths = lambda ls, T: (torch.arange(T) < torch.tensor(ls)[:, None]).long()  # noqa: E731  (B, T) of 0/1
    return [
        ("no padding, B=2, T=3, C=4", (r(2, 3, 4), torch.ones(2, 3, dtype=torch.long))),
        ("padding: lengths [4, 2], T=4, C=3", (r(2, 4, 3), lengths([4, 2], 4))),
        ("one sentence of 1 real token among 5, B=3, C=6", (r(3, 5, 6), lengths([5, 1, 3], 5))),
    ]


def _m(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.unsqueeze(-1).to(like.dtype)  # (B, T, 1)


_POOL_MISTAKES = [
    (lambda h, m: (h * _m(m, h)).sum(1),
     "the division is missing: divide the masked sum by the number of real tokens, "
     "attention_mask.sum(dim=1, keepdim=True)"),
    (lambda h, m: h.mean(1),
     "padding tokens are counted: multiply the hidden states by the mask before summing, and divide by the "
     "number of real tokens (attention_mask.sum(dim=1)), not by T"),
    (lambda h, m: (h * _m(m, h)).sum(1) / h.shape[1],
     "padding tokens are counted in the denominator: divide by the number of real tokens of each sentence "
     "(attention_mask.sum(dim=1, keepdim=True)), not by T"),
    (lambda h, m: h.sum(1) / _m(m, h).sum(1),
     "padding tokens are counted in the sum: multiply the hidden states by attention_mask.unsqueeze(-1) "
     "(shape (B, T, 1)) before summing over the tokens"),
]


def _shape_hint(h: torch.Tensor, got: object) -> str | None:
    B, T, C = h.shape
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else None
    if shape == (B, 1, C):
        return f"the result has shape (B, 1, C) = {shape}: sum over the tokens (dim=1) without keepdim to get (B, C)"
    if shape == (B, T):
        return (f"the result has shape (B, T) = {shape}: you averaged over the hidden axis; average over the "
                "tokens, dim=1, to get (B, C)")
    if shape == (B, T, C):
        return f"the result still has the token axis, shape (B, T, C) = {shape}: sum over dim=1 to get (B, C)"
    return None


def check_mean_pool(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(last_hidden_state (B, T, C), attention_mask (B, T)) -> (B, C)`` against
    :func:`utils.pretrained.mean_pool`."""
    name = "mean_pool"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    cases = _pool_cases()
    for description, (h, m) in cases:
        expected = mean_pool(h, m)
        got, failed = call_learner(name, fn, [h.clone(), m.clone()], case=description)
        if failed is not None:
            return _report(failed, quiet)
        msg = explain_mismatch(expected, got)
        if msg is None:
            continue
        why = _shape_hint(h, got)
        if why is None and "shape" not in msg:
            why = next((w for wrong, w in _POOL_MISTAKES if explain_mismatch(wrong(h, m), got) is None), None)
        return _report(CheckResult(name, FAIL, f"on case '{description}': {why or msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match utils.pretrained.mean_pool"), quiet)


# ---------------------------------------------------------------------- classification head
def head_reference(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, K)`` = mean_pool(hidden, mask) · Wᵀ + b (dropout is off in eval mode)."""
    return F.linear(mean_pool(last_hidden_state, attention_mask), weight, bias)


def _head_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    C, K = 6, 3
    W, b = 0.5 * r(K, C), 0.1 * r(K)
    lengths = torch.tensor([5, 2, 3])
    mask = (torch.arange(5) < lengths[:, None]).long()  # (3, 5)
    return [
        ("no padding, B=2, T=4, C=6, K=3", (r(2, 4, C), torch.ones(2, 4, dtype=torch.long), W, b)),
        ("padding: lengths [5, 2, 3], T=5", (r(3, 5, C), mask, W, b)),
    ]


_HEAD_MISTAKES = [
    (lambda h, m, W, b: head_reference(h, m, W, b).softmax(-1),
     "the head returns probabilities: return the logits (no softmax); nn.CrossEntropyLoss applies log-softmax itself"),
    (lambda h, m, W, b: F.linear(h[:, 0], W, b),
     "the head reads the first token only; all-MiniLM-L6-v2 was trained with mean pooling over the real tokens: "
     "pool with your mean_pool(last_hidden_state, attention_mask) first"),
    (lambda h, m, W, b: F.linear(h.mean(1), W, b),
     "the pooling counts padding tokens: pool with mean_pool(last_hidden_state, attention_mask), "
     "which averages over the real tokens only"),
]


def check_classification_head(head_cls: type, *, quiet: bool = False) -> CheckResult:
    """Check a head class ``head_cls(hidden_size, num_classes)`` with a ``linear`` layer whose
    ``forward(last_hidden_state (B, T, C), attention_mask (B, T))`` returns logits ``(B, K)``.

    The checker builds the head, switches it to eval mode (dropout off), copies fixed weights into
    ``head.linear`` and compares with :func:`head_reference`.
    """
    name = "ClassificationHead"
    cases = _head_cases()
    _, (h0, _, W0, _) = cases[0]
    C, K = h0.shape[-1], W0.shape[0]
    try:
        head = head_cls(C, K)
    except NotImplementedError:
        return _report(CheckResult(name, TODO, "the head's __init__ still raises NotImplementedError"), quiet)
    except Exception as exc:
        return _report(CheckResult(name, FAIL, f"{name}({C}, {K}) raised {type(exc).__name__}: {exc}"), quiet)
    if not isinstance(head, nn.Module):
        return _report(CheckResult(name, FAIL, f"expected an nn.Module subclass, got {type(head).__name__}"), quiet)
    linear = getattr(head, "linear", None)
    if not isinstance(linear, nn.Linear) or tuple(linear.weight.shape) != (K, C):
        return _report(CheckResult(name, FAIL, f"keep `self.linear = nn.Linear(hidden_size, num_classes)` from "
                                               f"__init__: expected weight of shape ({K}, {C})"), quiet)
    head = head.to(torch.float64).eval()
    for description, (h, m, W, b) in cases:
        with torch.no_grad():
            head.linear.weight.copy_(W)
            head.linear.bias.copy_(b)
        expected = head_reference(h, m, W, b)
        try:
            with torch.no_grad():
                got = head(h.clone(), m.clone())
        except NotImplementedError:
            return _report(CheckResult(name, TODO, "`forward` still raises NotImplementedError (or your mean_pool "
                                                   "does): replace the `raise` line with your code."), quiet)
        except Exception as exc:
            return _report(CheckResult(name, FAIL, f"on case '{description}' your forward raised "
                                                   f"{type(exc).__name__}: {exc}"), quiet)
        msg = explain_mismatch(expected, got, what="logits")
        if msg is None:
            continue
        B, T, _ = h.shape
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (B, T, K):
            why = (f"the head returns one score per token, shape (B, T, K) = {(B, T, K)}: pool the token vectors "
                   "to (B, C) with mean_pool before the linear layer")
        elif "shape" in msg:
            why = None
        else:
            why = next((w for wrong, w in _HEAD_MISTAKES if explain_mismatch(wrong(h, m, W, b), got) is None), None)
        return _report(CheckResult(name, FAIL, f"on case '{description}': {why or msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match mean pooling + the linear layer"), quiet)


# -------------------------------------------------------------------------- one training step
class _TinyClassifier(nn.Module):
    """A stand-in for the fine-tuned model: token embeddings, mean pooling, a linear layer.
    Like :class:`utils.finetune.EncoderClassifier`, ``forward(inputs)`` takes the tokenizer's
    mapping (``input_ids``, ``attention_mask``) and returns logits ``(B, K)``."""

    def __init__(self, vocab_size: int = 11, hidden_size: int = 5, num_classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.linear = nn.Linear(hidden_size, num_classes)

    def forward(self, inputs):
        return self.linear(mean_pool(self.embed(inputs["input_ids"]), inputs["attention_mask"]))


def train_step_reference(model: nn.Module, inputs, labels: torch.Tensor, optimizer: torch.optim.Optimizer) -> float:
    """One update: forward, cross-entropy on the logits, zero_grad, backward, step; returns the loss."""
    logits = model(inputs)  # (B, K)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_zero_grad(model, inputs, labels, optimizer):
    loss = F.cross_entropy(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def _softmax_first(model, inputs, labels, optimizer):
    loss = F.cross_entropy(model(inputs).softmax(-1), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_step(model, inputs, labels, optimizer):
    loss = F.cross_entropy(model(inputs), labels)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


_STEP_MISTAKES = [
    (_no_zero_grad, "gradients accumulate from one step to the next: call optimizer.zero_grad() before "
                    "loss.backward()"),
    (_softmax_first, "the loss is computed on probabilities: pass the logits to F.cross_entropy "
                     "(it applies log-softmax itself)"),
    (_no_step, "the weights never change: call optimizer.step() after loss.backward()"),
]


def _run_steps(fn: Callable) -> tuple[tuple[float, ...], tuple[torch.Tensor, ...]]:
    """Three steps of ``fn`` on a seeded tiny model with SGD + momentum: (losses, final weights)."""
    torch.manual_seed(0)
    model = _TinyClassifier().double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    g = torch.Generator().manual_seed(2)
    losses = []
    for _ in range(3):
        ids = torch.randint(1, 11, (4, 6), generator=g)
        mask = (torch.arange(6) < torch.randint(2, 7, (4, 1), generator=g)).long()  # (4, 6)
        labels = torch.randint(0, 3, (4,), generator=g)
        loss = fn(model, {"input_ids": ids, "attention_mask": mask}, labels, optimizer)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.item()
        losses.append(loss)
    return tuple(losses), tuple(p.detach().clone() for p in model.parameters())


def check_train_step(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, inputs, labels, optimizer) -> loss (float)`` by running three steps on a
    tiny seeded model and comparing the losses and the final weights with the reference."""
    name = "train_step"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {type(fn).__name__}"), quiet)
    expected = _run_steps(train_step_reference)
    got, failed = call_learner(name, _run_steps, [fn])
    if failed is not None:
        return _report(failed, quiet)
    if not all(isinstance(v, float) for v in got[0]):
        return _report(CheckResult(name, FAIL, "return the loss as a number: `return loss.item()` "
                                               f"(got {type(got[0][0]).__name__})"), quiet)
    msg = explain_mismatch(expected[0], got[0], what="losses") or explain_mismatch(expected[1], got[1], what="weights")
    if msg is None:
        return _report(CheckResult(name, PASS, "three steps on a tiny model give the reference losses and "
                                               "weights"), quiet)
    for wrong, why in _STEP_MISTAKES:
        if explain_mismatch(_run_steps(wrong), got) is None:
            return _report(CheckResult(name, FAIL, why), quiet)
    return _report(CheckResult(name, FAIL, msg), quiet)


def check_test_accuracy(accuracy: float | None, threshold: float = 0.8, *, quiet: bool = False) -> CheckResult:
    """The lab's target: test accuracy of the fine-tuned classifier at least ``threshold``."""
    return check_threshold(accuracy, threshold, name="test accuracy", quiet=quiet)
