"""Checkers for the lab "Fine-tune a pretrained encoder" (``labs/05_finetune_encoder.ipynb``).

Each check runs the learner's code on fixed cases, compares with the reference in
:mod:`utils.pretrained` / :mod:`utils.finetune` and, when a case fails, tries the usual
mistakes -- padding tokens counted in the average, the division missing, a pooled vector
that keeps the token axis, probabilities instead of logits, the first token instead of the
mean, dropout never used or always on, gradients left to accumulate or erased before the step,
a step before backward -- so the verdict names the likely bug. Gradient flow is checked too: a
pooling or head that cuts the graph would leave the encoder untouched by fine-tuning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import (CUT_HINT, FAIL, PASS, CheckResult, _report, call_learner, check_threshold, describe,
                          explain_gradients, explain_mismatch, guarded, try_mistakes)
from utils.checks._train import StepSpec, check_train_step_spec
from utils.checks._validate import tensor_arg
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


_POOL_ARGS = ("last_hidden_state", "attention_mask")


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


@guarded("mean_pool")
def check_mean_pool(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(last_hidden_state (B, T, C), attention_mask (B, T)) -> (B, C)`` against
    :func:`utils.pretrained.mean_pool`: values, inputs left unchanged, and the gradient with respect
    to the hidden states (the encoder is fine-tuned through the pooling)."""
    name = "mean_pool"
    if not callable(fn):
        return _report(CheckResult(name, FAIL, f"expected a function, got {describe(fn)}"), quiet)
    cases = _pool_cases()
    for description, (h, m) in cases:
        expected = mean_pool(h, m)
        got, failed = call_learner(name, fn, [h.clone(), m.clone()], case=description, arg_names=_POOL_ARGS,
                                   frozen=_POOL_ARGS)
        if failed is not None:
            return _report(failed, quiet)
        msg = explain_mismatch(expected, got)
        if msg is None:
            continue
        why = _shape_hint(h, got) or try_mistakes(_POOL_MISTAKES, (h, m), got)
        return _report(CheckResult(name, FAIL, f"on case '{description}': {why or msg}"), quiet)
    description, args = cases[1]
    report = explain_gradients(fn, mean_pool, args, wrt=(0,), arg_names=_POOL_ARGS, name=name)
    if report.message:
        return _report(CheckResult(name, FAIL, f"on case '{description}': {report.message}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match utils.pretrained.mean_pool, gradient "
                                           "included"), quiet)


# ---------------------------------------------------------------------- classification head
def head_reference(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None) -> torch.Tensor:
    """Logits ``(B, K)`` = mean_pool(hidden, mask) · Wᵀ + b (dropout is off in eval mode)."""
    tensor_arg("last_hidden_state", last_hidden_state, ndim=3, floating=True, shape="(B, T, C)")
    tensor_arg("attention_mask", attention_mask, ndim=2, shape="(B, T)")
    tensor_arg("weight", weight, ndim=2, floating=True, shape="(K, C)")
    if bias is not None:
        tensor_arg("bias", bias, ndim=1, floating=True, shape="(K,)")
    if weight.shape[1] != last_hidden_state.shape[-1]:
        raise ValueError(f"weight must be (K, C) with C = {last_hidden_state.shape[-1]}, got {tuple(weight.shape)}")
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
    (lambda h, m, W, b: F.linear(mean_pool(h, m), W),
     "the bias of self.linear is not added: call self.linear(pooled) rather than multiplying by its weight"),
]


def _build_head(name: str, head_cls: Callable, C: int, K: int) -> tuple[nn.Module | None, CheckResult | None]:
    head, failed = call_learner(name, head_cls, [C, K], case=f"{name}({C}, {K})")
    if failed is not None:
        return None, failed
    if not isinstance(head, nn.Module):
        return None, CheckResult(name, FAIL, f"expected an nn.Module subclass, got {describe(head)}")
    linear = getattr(head, "linear", None)
    if not isinstance(linear, nn.Linear) or tuple(linear.weight.shape) != (K, C):
        return None, CheckResult(name, FAIL, f"keep `self.linear = nn.Linear(hidden_size, num_classes)` from "
                                             f"__init__: expected weight of shape ({K}, {C})")
    if linear.bias is None:
        return None, CheckResult(name, FAIL, "self.linear has no bias (bias=False): keep "
                                             "`self.linear = nn.Linear(hidden_size, num_classes)` as the lab gives it")
    return head, None


def _head_call(name: str, head: nn.Module, h: torch.Tensor, m: torch.Tensor, description: str, *, grad: bool = False):
    with torch.set_grad_enabled(grad):
        return call_learner(name, head, [h, m.clone()], case=description)


@guarded("ClassificationHead")
def check_classification_head(head_cls: type, *, quiet: bool = False) -> CheckResult:
    """Check a head class ``head_cls(hidden_size, num_classes)`` with a ``linear`` layer whose
    ``forward(last_hidden_state (B, T, C), attention_mask (B, T))`` returns logits ``(B, K)``.

    The checker builds the head, switches it to eval mode (dropout off), copies fixed weights into
    ``head.linear`` and compares with :func:`head_reference`; then it checks that the head is
    deterministic in eval mode, that its dropout acts in training mode, and that gradients reach
    both the linear layer and the hidden states (so that the encoder is fine-tuned).
    """
    name = "ClassificationHead"
    if isinstance(head_cls, nn.Module):
        return _report(CheckResult(name, FAIL, "pass the class itself, check_classification_head(ClassificationHead), "
                                               "not an instance: the checker builds its own head"), quiet)
    if not callable(head_cls):
        return _report(CheckResult(name, FAIL, f"expected a class, got {describe(head_cls)}"), quiet)
    cases = _head_cases()
    _, (h0, _, W0, _) = cases[0]
    C, K = h0.shape[-1], W0.shape[0]
    head, failed = _build_head(name, head_cls, C, K)
    if failed is not None:
        return _report(failed, quiet)
    head = head.to(torch.float64).eval()
    for description, (h, m, W, b) in cases:
        with torch.no_grad():
            head.linear.weight.copy_(W)
            head.linear.bias.copy_(b)
        expected = head_reference(h, m, W, b)
        got, failed = _head_call(name, head, h.clone(), m, description)
        if failed is not None:
            return _report(failed, quiet)
        msg = explain_mismatch(expected, got, what="logits")
        if msg is None:
            continue
        again, _ = _head_call(name, head, h.clone(), m, description)
        B, T, _ = h.shape
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (B, T, K):
            why = (f"the head returns one score per token, shape (B, T, K) = {(B, T, K)}: pool the token vectors "
                   "to (B, C) with mean_pool before the linear layer")
        elif isinstance(got, torch.Tensor) and isinstance(again, torch.Tensor) and again.shape == got.shape \
                and explain_mismatch(got, again, atol=0, rtol=0) is not None and explain_mismatch(got, got) is None:
            why = ("the head is random in eval mode: use the module self.dropout (nn.Dropout), which eval() "
                   "switches off, not F.dropout(x, p) whose training flag is always on")
        else:
            why = try_mistakes(_HEAD_MISTAKES, (h, m, W, b), got)
        return _report(CheckResult(name, FAIL, f"on case '{description}': {why or msg}"), quiet)
    description, (h, m, W, b) = cases[1]
    big = torch.randn(64, 5, C, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    big_mask = torch.ones(64, 5, dtype=torch.long)
    eval_out, _ = _head_call(name, head, big.clone(), big_mask, "64 sentences")
    head.train()
    torch.manual_seed(0)
    train_out, failed = _head_call(name, head, big.clone(), big_mask, "64 sentences in training mode")
    head.eval()
    if failed is not None:
        return _report(failed, quiet)
    if isinstance(train_out, torch.Tensor) and isinstance(eval_out, torch.Tensor) and \
            explain_mismatch(eval_out, train_out, atol=0, rtol=0) is None:
        return _report(CheckResult(name, FAIL, "in training mode the head gives exactly its eval-mode output: "
                                               "self.dropout is never applied; apply it to the pooled vector "
                                               "before self.linear"), quiet)
    leaf = h.clone().requires_grad_(True)
    head.zero_grad(set_to_none=True)
    got, failed = _head_call(name, head, leaf, m, description, grad=True)
    if failed is not None:
        return _report(failed, quiet)
    expected = head_reference(h, m, W, b)
    if explain_mismatch(expected, got, what="logits") is not None:
        return _report(CheckResult(name, FAIL, f"with inputs that require gradients the head gives other logits: "
                                               f"{explain_mismatch(expected, got, what='logits')}"), quiet)
    weight = torch.randn(got.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    if not got.requires_grad:
        return _report(CheckResult(name, FAIL, f"the logits are right, but no gradient flows back through the head: "
                                               f"{CUT_HINT}"), quiet)
    (got.to(torch.float64) * weight).sum().backward()
    ref_leaf = h.clone().requires_grad_(True)
    (head_reference(ref_leaf, m, W, b) * weight).sum().backward()
    if leaf.grad is None or not leaf.grad.any():
        return _report(CheckResult(name, FAIL, "the logits are right, but no gradient reaches last_hidden_state, "
                                               f"so fine-tuning would never update the encoder: {CUT_HINT}"), quiet)
    if head.linear.weight.grad is None:
        return _report(CheckResult(name, FAIL, f"the logits are right, but no gradient reaches self.linear: "
                                               f"{CUT_HINT}"), quiet)
    msg = explain_mismatch(ref_leaf.grad, leaf.grad, atol=1e-7, rtol=1e-5,
                           what="the gradient with respect to last_hidden_state")
    if msg:
        return _report(CheckResult(name, FAIL, f"the logits are right, but {msg}"), quiet)
    return _report(CheckResult(name, PASS, f"all {len(cases)} cases match mean pooling + the linear layer; dropout "
                                           "acts in training mode only; gradients reach the encoder"), quiet)


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
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    tensor_arg("labels", labels, ndim=1, integer=True, shape="(B,)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {describe(optimizer)}")
    logits = model(inputs)  # (B, K)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _batches():
    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(3):
        ids = torch.randint(1, 11, (4, 6), generator=g)
        mask = (torch.arange(6) < torch.randint(2, 7, (4, 1), generator=g)).long()  # (4, 6)
        out.append(({"input_ids": ids, "attention_mask": mask}, torch.randint(0, 3, (4,), generator=g)))
    return out


def _softmax_first(model, optimizer, batch):
    loss = F.cross_entropy(model(batch[0]).softmax(-1), batch[1])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


_FINETUNE_STEP = StepSpec(
    name="train_step",
    make_model=lambda: _TinyClassifier().double(),
    make_optimizer=lambda params: torch.optim.SGD(params, lr=0.5, momentum=0.9),
    batches=_batches(),
    call=lambda fn, model, optimizer, batch: fn(model, batch[0], batch[1], optimizer),
    loss=lambda model, batch: F.cross_entropy(model(batch[0]), batch[1]),
    extra_mistakes=[(_softmax_first, "the loss is computed on probabilities: pass the logits to F.cross_entropy "
                                     "(it applies log-softmax itself)")],
)


@guarded("train_step")
def check_train_step(fn: Callable, *, quiet: bool = False) -> CheckResult:
    """Check ``fn(model, inputs, labels, optimizer) -> loss (float)`` by running three steps on a
    tiny seeded model and comparing the losses and the final weights with the reference; a
    mismatch is explained from the order of zero_grad / backward / step in the learner's call."""
    return _report(check_train_step_spec(fn, _FINETUNE_STEP), quiet)


@guarded("test accuracy")
def check_test_accuracy(accuracy: float | None, threshold: float = 0.8, *, split: str = "test",
                        quiet: bool = False) -> CheckResult:
    """The lab's target: accuracy of the fine-tuned classifier at least ``threshold`` on ``split``
    (the lab checks the validation accuracy; the test set is measured once, at the end)."""
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
    return check_threshold(accuracy, threshold, name=f"{split} accuracy", quiet=quiet)
