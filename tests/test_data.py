import pytest
import torch

from utils import data


def test_digits_split_is_fixed_and_stratified():
    split = data.load_digits_split()
    assert split.X_train.shape == (1347, 1, 8, 8) and split.X_test.shape == (450, 1, 8, 8)
    assert split.X_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert 0.0 <= split.X_train.min() and split.X_train.max() <= 1.0
    assert torch.equal(split.y_test, data.load_digits_split().y_test)  # same split every time
    counts = torch.bincount(split.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46  # stratified: 43-46 per class
    Xtr, ytr, Xte, yte = split.flat()
    assert Xtr.shape == (1347, 64) and Xte.shape == (450, 64)


def test_digits_loaders_shapes():
    train, test = data.digits_loaders(batch_size=32)
    X, y = next(iter(train))
    assert X.shape == (32, 1, 8, 8) and y.shape == (32,)
    X, _ = next(iter(data.digits_loaders(batch_size=16, flat=True)[0]))
    assert X.shape == (16, 64)
    assert sum(len(b[1]) for b in test) == 450


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"test_size": 0}, ValueError, "test_size"),
    ({"test_size": 2.5}, TypeError, "test_size"),
])
def test_digits_bad_input(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        data.load_digits_split(**kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        data.digits_loaders(batch_size=0)


def test_digits_validation_split_leaves_test_unchanged():
    plain = data.load_digits_split()
    split = data.load_digits_split(val_size=data.DIGITS_VAL_SIZE)
    assert not plain.has_val and split.has_val
    assert split.X_train.shape == (1000, 1, 8, 8) and split.X_val.shape == (347, 1, 8, 8)
    assert split.y_val.dtype == torch.int64 and split.X_val.dtype == torch.float32
    # the test set is the same with or without a validation set
    assert torch.equal(split.X_test, plain.X_test) and torch.equal(split.y_test, plain.y_test)
    # validation + training = the old training set, with no image in both
    rows = lambda X: {tuple(r) for r in X.flatten(1).mul(16).round().int().tolist()}
    assert len(split.X_train) + len(split.X_val) == len(plain.X_train)
    assert torch.equal(torch.sort(torch.cat([split.y_train, split.y_val])).values, torch.sort(plain.y_train).values)
    assert rows(split.X_train) | rows(split.X_val) == rows(plain.X_train)
    counts = torch.bincount(split.y_val, minlength=10)
    assert counts.min() >= 33 and counts.max() <= 36  # stratified
    Xtr, ytr, Xva, yva, Xte, yte = split.flat(with_val=True)
    assert Xtr.shape == (1000, 64) and Xva.shape == (347, 64) and Xte.shape == (450, 64)
    assert len(split.flat()) == 4  # the old unpacking still works
    with pytest.raises(ValueError, match="val_size"):
        plain.flat(with_val=True)


def test_digits_loaders_with_validation():
    loaders = data.digits_loaders(batch_size=32, flat=True, val_size=data.DIGITS_VAL_SIZE)
    assert len(loaders) == 3
    train, val, test = loaders
    assert sum(len(b[1]) for b in train) == 1000
    assert sum(len(b[1]) for b in val) == 347 and sum(len(b[1]) for b in test) == 450
    assert next(iter(val))[0].shape[1:] == (64,)
    assert len(data.digits_loaders(batch_size=32)) == 2  # unchanged without val_size


@pytest.mark.parametrize("val_size, exc", [(5, ValueError), (1340, ValueError), (20.0, TypeError), (-1, ValueError)])
def test_digits_bad_val_size(val_size, exc):
    with pytest.raises(exc, match="val_size"):
        data.load_digits_split(val_size=val_size)


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_token_tasks(task):
    X, y = data.make_sequence_task(task, 50, 7, vocab_size=5, seed=3)
    assert X.shape == y.shape == (50, 7) and X.dtype == torch.int64
    assert int(X.max()) < 5
    expected = {"copy": X, "reverse": X.flip(1), "sort": X.sort(1).values}[task]
    assert torch.equal(y, expected)


def test_recall_parity_adding():
    X, y = data.make_sequence_task("recall", 20, 9, seed=1)
    assert torch.equal(y, X[:, 0])
    X, y = data.make_sequence_task("parity", 20, 9, seed=1)
    assert torch.equal(y, X.sum(1) % 2)
    X, y = data.make_sequence_task("adding", 20, 10, seed=1)
    assert X.shape == (20, 10, 2) and y.shape == (20,)
    assert torch.all(X[..., 1].sum(1) == 2)
    assert torch.allclose(y, (X[..., 0] * X[..., 1]).sum(1))
    # one marker in each half: the model must remember across the whole sequence
    assert torch.all(X[:, :5, 1].sum(1) == 1) and torch.all(X[:, 5:, 1].sum(1) == 1)


def test_sequence_task_is_seeded():
    a = data.make_sequence_task("copy", 5, 4, seed=9)[0]
    assert torch.equal(a, data.make_sequence_task("copy", 5, 4, seed=9)[0])
    assert not torch.equal(a, data.make_sequence_task("copy", 5, 4, seed=10)[0])


@pytest.mark.parametrize("args, kwargs, exc, word", [
    (("shuffle", 5, 4), {}, ValueError, "task"),
    (("copy", 0, 4), {}, ValueError, "num_samples"),
    (("copy", 5, 1), {}, ValueError, "seq_len"),
    (("copy", 5, 4), {"vocab_size": 1}, ValueError, "vocab_size"),
    (("copy", 5.0, 4), {}, TypeError, "num_samples"),
])
def test_sequence_task_bad_input(args, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        data.make_sequence_task(*args, **kwargs)


def test_sequence_loaders():
    train, test = data.sequence_loaders("reverse", 64, 32, 6, batch_size=16)
    X, y = next(iter(train))
    assert X.shape == (16, 6) and torch.equal(y, X.flip(1))
