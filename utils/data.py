"""Data helpers: scikit-learn's bundled 8x8 digits and synthetic sequence tasks.

Everything here is made locally: the digits ship inside scikit-learn (1,797 images of
8x8 pixels, values 0..16), and the sequence tasks are generated from a seed. Nothing is
downloaded. Used from chapter 2 on.

**The digits' three splits.** The test set is fixed: 450 images (25 %), the same in every
chapter. Chapters that choose anything (a number of epochs, a regularisation strength, a
model) pass ``val_size=DIGITS_VAL_SIZE`` and hold out 347 of the remaining 1,347 images as
a validation set, leaving 1,000 for training: they choose on the validation set and look at
the test set once, at the end. Without ``val_size`` the functions return the plain
train/test split (1,347 / 450) that earlier code expects.

Shapes: N samples, T sequence length, V vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from utils._validate import Float, Int, IntIn, OneOf, PosInt, Seed, Tensor, checked

__all__ = [
    "DIGITS_TEST_SIZE",
    "DIGITS_VAL_SIZE",
    "DigitsSplit",
    "load_digits_split",
    "digits_loaders",
    "SEQUENCE_TASKS",
    "make_sequence_task",
    "sequence_loaders",
]

DIGITS_TEST_SIZE = 450  # fixed test split used by every chapter (25 % of 1,797)
DIGITS_VAL_SIZE = 347  # validation images held out of the 1,347 training images: 1,000 / 347 / 450


@checked
@dataclass(frozen=True)
class DigitsSplit:
    """The fixed split of the digits: train/test, or train/validation/test.

    Attributes:
        X_train: ``(N_train, 1, 8, 8)`` float32 in [0, 1] (pixel value / 16).
        y_train: ``(N_train,)`` int64 labels 0..9.
        X_test: ``(N_test, 1, 8, 8)`` float32.
        y_test: ``(N_test,)`` int64.
        X_val: ``(N_val, 1, 8, 8)`` float32, or ``None`` when the split was made without
            ``val_size``.
        y_val: ``(N_val,)`` int64, or ``None``.
    """

    X_train: Float[Tensor, "N 1 8 8"]
    y_train: Int[Tensor, "N"]
    X_test: Float[Tensor, "M 1 8 8"]
    y_test: Int[Tensor, "M"]
    X_val: Float[Tensor, "V 1 8 8"] | None = None
    y_val: Int[Tensor, "V"] | None = None

    @property
    def has_val(self) -> bool:
        """Whether this split holds a validation set."""
        return self.X_val is not None

    @checked
    def flat(self, *, with_val: bool = False) -> tuple[torch.Tensor, ...]:
        """The same split with images flattened to ``(N, 64)``.

        Returns ``(X_train, y_train, X_test, y_test)``, or with ``with_val=True``
        ``(X_train, y_train, X_val, y_val, X_test, y_test)``.
        """
        if not with_val:
            return (self.X_train.flatten(1), self.y_train, self.X_test.flatten(1), self.y_test)
        if not self.has_val:
            raise ValueError("with_val=True needs a split made with val_size, "
                             "e.g. load_digits_split(val_size=DIGITS_VAL_SIZE)")
        return (self.X_train.flatten(1), self.y_train, self.X_val.flatten(1), self.y_val,
                self.X_test.flatten(1), self.y_test)


def _check_size(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} images, got {value}")
    return int(value)


@checked
def load_digits_split(test_size: IntIn(10, 1787) = DIGITS_TEST_SIZE, seed: Seed = 0, *,
                      val_size: IntIn(10, 1777) | None = None) -> DigitsSplit:
    """Load scikit-learn's bundled digits as tensors with a fixed, stratified split.

    Args:
        test_size: number of test images, between 10 and 1,787 (default 450).
        seed: the split's random state; keep the default to compare with the book.
        val_size: number of validation images held out of the training images (stratified),
            ``None`` (default: no validation set, the train/test split of earlier chapters) or
            between 10 and the number that leaves 10 training images. The test set does not depend on it:
            ``val_size`` only moves images from training to validation.
            ``DIGITS_VAL_SIZE`` (347) gives the book's 1,000 / 347 / 450 split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    test_size = _check_size("test_size", test_size, 10, 1787)
    if val_size is not None:  # stratified: at least one image per class in each part
        val_size = _check_size("val_size", val_size, 10, 1797 - test_size - 10)
    digits = load_digits()
    X = digits.images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y
    )
    as_img = lambda a: torch.from_numpy(a).unsqueeze(1)  # (N, 8, 8) -> (N, 1, 8, 8)
    if val_size is None:
        return DigitsSplit(as_img(X_tr), torch.from_numpy(y_tr), as_img(X_te), torch.from_numpy(y_te))
    X_tr, X_va, y_tr, y_va = train_test_split(
        X_tr, y_tr, test_size=val_size, random_state=seed, stratify=y_tr
    )
    return DigitsSplit(as_img(X_tr), torch.from_numpy(y_tr), as_img(X_te), torch.from_numpy(y_te),
                       as_img(X_va), torch.from_numpy(y_va))


@checked
def digits_loaders(
    batch_size: PosInt = 64,
    *,
    flat: bool = False,
    seed: Seed = 0,
    test_size: IntIn(10, 1787) = DIGITS_TEST_SIZE,
    val_size: IntIn(10, 1777) | None = None,
) -> tuple[DataLoader, ...]:
    """``DataLoader`` s over the fixed digits split: ``(train, test)``, or with ``val_size``
    ``(train, val, test)``.

    Args:
        batch_size: positive batch size of the training loader (validation and test use 512).
        flat: give ``(B, 64)`` vectors instead of ``(B, 1, 8, 8)`` images.
        seed: seeds the split and the shuffling order of the training loader.
        test_size: number of test images (default 450).
        val_size: number of validation images held out of the training images; ``None`` (default)
            returns the two loaders ``(train, test)`` of earlier code, a number the three
            loaders ``(train, val, test)``. ``DIGITS_VAL_SIZE`` is the book's choice.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    split = load_digits_split(test_size=test_size, seed=seed, val_size=val_size)
    shape = (lambda a: a.flatten(1)) if flat else (lambda a: a)  # (N, 64) or (N, 1, 8, 8)
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(shape(split.X_train), split.y_train), batch_size=batch_size,
                       shuffle=True, generator=gen)
    test = DataLoader(TensorDataset(shape(split.X_test), split.y_test), batch_size=512, shuffle=False)
    if not split.has_val:
        return train, test
    val = DataLoader(TensorDataset(shape(split.X_val), split.y_val), batch_size=512, shuffle=False)
    return train, val, test


# ----------------------------------------------------------------------------------------
# Synthetic sequence tasks
# ----------------------------------------------------------------------------------------

SEQUENCE_TASKS = {
    "copy": "tokens (N, T) -> the same tokens (N, T)",
    "reverse": "tokens (N, T) -> the tokens in reverse order (N, T)",
    "sort": "tokens (N, T) -> the tokens sorted ascending (N, T)",
    "recall": "tokens (N, T) -> the first token (N,): memory over the whole sequence",
    "parity": "bits (N, T) -> 1 if the number of ones is odd (N,)",
    "adding": "(N, T, 2) values and markers -> sum of the two marked values (N,) "
              "(the adding problem of Hochreiter & Schmidhuber, 1997)",
}


@checked
def make_sequence_task(
    task: OneOf(*SEQUENCE_TASKS),
    num_samples: PosInt,
    seq_len: IntIn(2),
    *,
    vocab_size: IntIn(2) = 10,
    seed: Seed = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate a synthetic sequence task; see ``SEQUENCE_TASKS`` for the list.

    Args:
        task: one of ``"copy"``, ``"reverse"``, ``"sort"``, ``"recall"``, ``"parity"``,
            ``"adding"``.
        num_samples: N, positive.
        seq_len: T, at least 2.
        vocab_size: V for the token tasks (ignored by ``parity`` and ``adding``), at least 2.
        seed: generator seed; the same arguments always give the same tensors.

    Returns:
        ``(X, y)``. Token tasks: ``X`` is ``(N, T)`` int64 in ``[0, V)``; ``copy``,
        ``reverse`` and ``sort`` give ``y`` of shape ``(N, T)``, ``recall`` and ``parity``
        give ``(N,)`` int64. ``adding`` gives ``X`` ``(N, T, 2)`` float32 (channel 0: values
        in [0, 1), channel 1: two markers set to 1, one in each half) and ``y`` ``(N,)``
        float32.
    """
    if task not in SEQUENCE_TASKS:
        raise ValueError(f"task must be one of {sorted(SEQUENCE_TASKS)}, got {task!r}")
    for name, value, low in (("num_samples", num_samples, 1), ("seq_len", seq_len, 2),
                             ("vocab_size", vocab_size, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    gen = torch.Generator().manual_seed(seed)
    N, T = int(num_samples), int(seq_len)

    if task == "adding":
        values = torch.rand(N, T, generator=gen)
        half = T // 2
        first = torch.randint(0, half, (N,), generator=gen)
        second = torch.randint(half, T, (N,), generator=gen)
        markers = torch.zeros(N, T)
        rows = torch.arange(N)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        X = torch.stack([values, markers], dim=-1)  # (N, T, 2)
        y = values[rows, first] + values[rows, second]  # (N,)
        return X, y
    if task == "parity":
        X = torch.randint(0, 2, (N, T), generator=gen)
        return X, X.sum(dim=1) % 2

    X = torch.randint(0, int(vocab_size), (N, T), generator=gen)  # (N, T)
    if task == "copy":
        y = X.clone()
    elif task == "reverse":
        y = X.flip(dims=[1])
    elif task == "sort":
        y = X.sort(dim=1).values
    else:  # recall
        y = X[:, 0].clone()
    return X, y


@checked
def sequence_loaders(
    task: OneOf(*SEQUENCE_TASKS),
    num_train: PosInt,
    num_test: PosInt,
    seq_len: IntIn(2),
    *,
    batch_size: PosInt = 64,
    vocab_size: IntIn(2) = 10,
    seed: Seed = 0,
) -> tuple[DataLoader, DataLoader]:
    """Train/test loaders for :func:`make_sequence_task` (test data uses ``seed + 1``)."""
    X_tr, y_tr = make_sequence_task(task, num_train, seq_len, vocab_size=vocab_size, seed=seed)
    X_te, y_te = make_sequence_task(task, num_test, seq_len, vocab_size=vocab_size, seed=seed + 1)
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(X_tr, y_tr), batch_size=batch_size, shuffle=True, generator=gen)
    test = DataLoader(TensorDataset(X_te, y_te), batch_size=512, shuffle=False)
    return train, test
