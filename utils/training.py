"""A generic train/evaluate loop that knows nothing about the model or the plots.

Explained in chapter 2 (training a small MLP on the digits) and used by every later
chapter. :func:`fit` returns a :class:`History`; progress bars (``tqdm.auto``) and live
plots attach through ``callbacks``.

Model selection happens on the *validation* loader, never on the test set: ``fit`` records
the validation metrics after every epoch, and with ``restore_best=True`` it hands back the
weights of the epoch with the best validation metric (``monitor``), optionally stopping
after ``patience`` epochs without improvement (early stopping). Evaluate on the test set
once, afterwards, with :func:`evaluate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader

from utils._validate import Device, Duck, Float, Integer, OneOf, PosFloat, PosInt, Tensor, check, check_ids, checked

__all__ = ["History", "accuracy", "calibration_bins", "expected_calibration_error", "evaluate", "train_epoch", "fit"]


@checked
@dataclass
class History:
    """Per-epoch metrics of a :func:`fit` run (lists of equal length, one entry per epoch)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time of each epoch

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @checked
    def best(self, metric: str = "val_acc") -> float:
        """Best value of ``metric`` (max for accuracies, min for losses)."""
        values = getattr(self, metric, None)
        if not isinstance(values, list) or not values:
            raise ValueError(f"metric must be a recorded History field, got {metric!r}")
        return max(values) if metric.endswith("acc") else min(values)

    @checked
    def best_epoch(self, metric: str = "val_loss") -> int:
        """The epoch (1-based, as on the curves' x-axis) with the best value of ``metric``;
        the first one when several tie."""
        values = getattr(self, metric, None)
        best = self.best(metric)
        return values.index(best) + 1  # type: ignore[union-attr]

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.__dict__.items()}


@checked
def accuracy(logits: Float[Tensor, "N K"], targets: Integer[Tensor, "N"]) -> float:
    """Fraction of rows of ``logits`` ``(N, num_classes)`` whose argmax equals ``targets`` ``(N,)``."""
    check_ids("targets", targets, logits.shape[1])
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, num_classes), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"targets must have shape ({logits.shape[0]},) to match logits, got {tuple(targets.shape)}")
    return (logits.argmax(dim=1) == targets).float().mean().item()


@checked
def calibration_bins(
    logits: Float[Tensor, "N K"], targets: Integer[Tensor, "N"], bins: PosInt = 10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The data of a reliability diagram: predictions grouped by confidence.

    The confidence of a row of ``logits`` ``(N, num_classes)`` is its largest softmax
    probability; rows fall into ``bins`` equal-width bins ``(0, 1/bins], ..., ((bins-1)/bins, 1]``.

    Returns:
        ``(confidence, accuracy, count)``, each ``(bins,)``: the mean confidence and the
        fraction of correct predictions in each bin (``nan`` for an empty bin) and the number
        of rows in it. A calibrated model has accuracy close to confidence in every bin.
    """
    check_ids("targets", targets, logits.shape[1])
    probs = logits.detach().double().softmax(dim=1)  # (N, num_classes)
    conf, pred = probs.max(dim=1)  # (N,), (N,)
    correct = (pred == targets).double()  # (N,)
    index = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)  # bin of each row, (N,)
    count = torch.bincount(index, minlength=bins)  # (bins,)
    total = count.clamp(min=1).double()
    mean_conf = torch.bincount(index, weights=conf, minlength=bins) / total
    mean_acc = torch.bincount(index, weights=correct, minlength=bins) / total
    empty = count == 0
    mean_conf[empty], mean_acc[empty] = float("nan"), float("nan")
    return mean_conf, mean_acc, count


@checked
def expected_calibration_error(logits: Float[Tensor, "N K"], targets: Integer[Tensor, "N"], bins: PosInt = 10) -> float:
    """Expected calibration error (Guo et al., 2017): the gap between accuracy and confidence,
    averaged over the :func:`calibration_bins` with weights ``count / N``. 0 is perfect; a model
    that says 90 % and is right 70 % of the time has 0.2."""
    conf, acc, count = calibration_bins(logits, targets, bins)
    used = count > 0
    return float((count[used].double() / count.sum() * (acc[used] - conf[used]).abs()).sum())


def _check_loader(name: str, loader: object) -> None:
    if not isinstance(loader, Iterable):
        raise TypeError(f"{name} must be an iterable of (inputs, targets) batches, "
                        f"got {type(loader).__name__}")


@torch.no_grad()
@checked
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    device: Device | None = None,
    classification: bool = True,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (accuracy is ``nan`` for regression).

    The model is put in eval mode and restored to its previous mode afterwards.
    """
    _check_loader("loader", loader)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        out = model(X)
        total_loss += loss_fn(out, y).item() * len(y)
        if classification:
            correct += (out.argmax(dim=-1) == y).sum().item()
        count += len(y)
    model.train(was_training)
    if count == 0:
        raise ValueError("loader produced no batches")
    return total_loss / count, (correct / count if classification else float("nan"))


@checked
def train_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: Duck("zero_grad", "step"),
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    device: Device,
    classification: bool = True,
    progress: Duck("update", "set_postfix") | None = None,
    grad_clip: PosFloat | None = None,
) -> tuple[float, float]:
    """One pass over ``loader``; returns mean training loss and accuracy."""
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        out = model(X)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total_loss += loss.item() * len(y)
        if classification:
            correct += (out.detach().argmax(dim=-1) == y).sum().item()
        count += len(y)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)  # no forced redraw per batch
    return total_loss / max(count, 1), (correct / max(count, 1) if classification else float("nan"))


@checked
def fit(
    model: nn.Module,
    train_loader: DataLoader | Iterable,
    val_loader: DataLoader | Iterable | None = None,
    *,
    epochs: PosInt = 10,
    lr: PosFloat = 1e-3,
    optimizer: Duck("zero_grad", "step") | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: Device | None = None,
    classification: bool = True,
    grad_clip: PosFloat | None = None,
    scheduler: Duck("step") | None = None,
    callbacks: Sequence[Callable[[int, History], object]] = (),
    progress: bool = True,
    restore_best: bool = False,
    monitor: OneOf("val_loss", "val_acc") = "val_loss",
    patience: PosInt | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader`` and return a :class:`History`.

    Args:
        model: any ``nn.Module`` mapping a batch of inputs to outputs that ``loss_fn`` accepts.
        train_loader, val_loader: iterables of ``(inputs, targets)`` batches.
        epochs: positive number of passes.
        lr: learning rate of the default optimiser (Adam), positive; ignored if
            ``optimizer`` is given.
        loss_fn: defaults to cross-entropy.
        device: defaults to where the model's parameters are.
        classification: record accuracies (``False`` for regression).
        grad_clip: clip the global gradient norm to this value.
        scheduler: an LR scheduler stepped once per epoch.
        callbacks: functions ``callback(epoch, history)`` called after each epoch
            (live plots, early logging). A callback returning ``True`` stops training.
        progress: draw a ``tqdm.auto`` bar over all batches.
        restore_best: at the end, load the weights of the epoch with the best ``monitor``
            value (needs ``val_loader``); ``history.best_epoch(monitor)`` says which epoch.
        monitor: ``"val_loss"`` (lower is better, the default) or ``"val_acc"`` (higher is
            better) for ``restore_best`` and ``patience``.
        patience: stop when ``monitor`` has not improved for this many epochs (early
            stopping; needs ``val_loader``). ``None`` trains all ``epochs``.
    """
    check(monitor == "val_loss" or classification, "monitor", "'val_loss' for regression (no accuracy recorded)",
          repr(monitor))
    check(val_loader is not None or not (restore_best or patience is not None), "val_loader",
          "given for restore_best and patience (they select on the validation set)", None)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = History()
    higher_is_better = monitor == "val_acc"
    best_value, best_state, since_best = -math.inf if higher_is_better else math.inf, None, 0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        try:
            total = epochs * len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            total = None
        bar = tqdm(total=total, desc="training", leave=False)
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            tr_loss, tr_acc = train_epoch(model, train_loader, optimizer, loss_fn, device=device,
                                          classification=classification, progress=bar,
                                          grad_clip=grad_clip)
            if scheduler is not None:
                scheduler.step()
            history.train_loss.append(tr_loss)
            history.train_acc.append(tr_acc)
            if val_loader is not None:
                va_loss, va_acc = evaluate(model, val_loader, loss_fn, device=device,
                                           classification=classification)
                history.val_loss.append(va_loss)
                history.val_acc.append(va_acc)
            history.seconds.append(time.perf_counter() - start)
            stop_early = False
            if val_loader is not None and (restore_best or patience is not None):
                value = getattr(history, monitor)[-1]
                if value > best_value if higher_is_better else value < best_value:
                    best_value, since_best = value, 0
                    if restore_best:  # a copy of the weights, not a view that training changes
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since_best += 1
                    stop_early = patience is not None and since_best >= patience
            stops = [cb(epoch, history) is True for cb in callbacks]  # run every callback
            if any(stops) or stop_early:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
