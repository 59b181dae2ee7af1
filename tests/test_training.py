import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.training import History, accuracy, evaluate, fit


def _toy(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return DataLoader(TensorDataset(X, y), batch_size=32, shuffle=False)


def test_fit_learns_a_linear_problem_and_records_history():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    hist = fit(model, _toy(), _toy(seed=1), epochs=15, lr=0.05, progress=False)
    assert isinstance(hist, History) and hist.epochs == 15
    assert len(hist.val_acc) == len(hist.seconds) == 15
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.best("val_acc") >= 0.95


def test_fit_callbacks_can_stop_and_all_run():
    seen = []
    model = nn.Linear(2, 2)
    fit(model, _toy(), epochs=10, progress=False,
        callbacks=[lambda e, h: e == 2, lambda e, h: seen.append(e)])
    assert seen == [0, 1, 2]


def test_fit_regression_and_progress_bar():
    X = torch.randn(64, 3)
    y = X.sum(1, keepdim=True)
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    hist = fit(nn.Linear(3, 1), loader, loader, epochs=2, loss_fn=nn.MSELoss(), classification=False)
    assert all(v != v for v in hist.val_acc)  # nan for regression


@pytest.mark.parametrize("kwargs, word", [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr")])
def test_fit_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        fit(nn.Linear(2, 2), _toy(), progress=False, **kwargs)
    with pytest.raises(TypeError, match="train_loader"):
        fit(nn.Linear(2, 2), 42, progress=False)


def test_evaluate_restores_mode_and_accuracy_checks_shapes():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    loss, acc = evaluate(model, _toy())
    assert model.training and 0.0 <= acc <= 1.0 and loss > 0
    assert accuracy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1])) == 0.5
    with pytest.raises(ValueError, match="logits"):
        accuracy(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="targets"):
        accuracy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        accuracy(torch.zeros(3, 2), torch.zeros(3))


def test_history_best_rejects_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        History().best("val_acc")
