import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.training import History, accuracy, calibration_bins, evaluate, expected_calibration_error, fit


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


class _Scripted(nn.Module):
    """A model whose validation loss follows a script: lets the tests know the best epoch."""

    def __init__(self, losses):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.losses = losses

    def forward(self, X):
        if not self.training:  # evaluation: a loss that the script sets for this epoch
            value = self.losses[min(int(self.epoch), len(self.losses) - 1)]
            return torch.full((len(X), 1), value) + 0 * self.w
        return X[:, :1] * self.w


def _scripted_fit(losses, **kwargs):
    X = torch.ones(8, 1)
    loader = DataLoader(TensorDataset(X, torch.zeros(8, 1)), batch_size=8)
    model = _Scripted(losses)

    def bump(epoch, hist):  # the next epoch's scripted validation loss
        model.epoch.add_(1)

    hist = fit(model, loader, loader, epochs=len(losses), lr=0.1, loss_fn=lambda out, y: out.mean(),
               classification=False, progress=False, callbacks=[bump], **kwargs)
    return model, hist


def test_fit_restores_the_best_validation_weights():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    hist = fit(model, _toy(), _toy(seed=1), epochs=12, lr=0.5, progress=False, restore_best=True)
    best = hist.best_epoch("val_loss")
    assert 1 <= best <= 12 and hist.val_loss[best - 1] == min(hist.val_loss)
    loss, _ = evaluate(model, _toy(seed=1))
    assert abs(loss - min(hist.val_loss)) < 1e-6  # the weights of the best epoch are back


def test_fit_best_epoch_and_early_stopping_follow_the_validation_loss():
    _, hist = _scripted_fit([3.0, 2.0, 1.0, 1.5, 1.2, 1.1, 0.9, 2.0])
    assert hist.epochs == 8 and hist.best_epoch("val_loss") == 7
    _, hist = _scripted_fit([3.0, 2.0, 1.0, 1.5, 1.2, 1.1, 0.9, 2.0], patience=3)
    assert hist.epochs == 6 and hist.best_epoch("val_loss") == 3  # stopped 3 epochs after the best


def test_history_best_epoch_for_accuracy():
    hist = History(val_acc=[0.5, 0.9, 0.9, 0.7])
    assert hist.best_epoch("val_acc") == 2  # the first of the tied best epochs


@pytest.mark.parametrize("kwargs, word", [
    ({"restore_best": True}, "val_loader"),
    ({"patience": 2}, "val_loader"),
    ({"patience": 0, "val": True}, "patience"),
    ({"monitor": "test_acc", "val": True}, "monitor"),
])
def test_fit_selection_arguments(kwargs, word):
    val = _toy(seed=1) if kwargs.pop("val", False) else None
    with pytest.raises(ValueError, match=word):
        fit(nn.Linear(2, 2), _toy(), val, epochs=2, progress=False, **kwargs)


def test_calibration_bins_and_ece_by_hand():
    # two classes; confidences 0.85 (four rows, three right) and 0.65 (two rows, both right)
    p = torch.tensor([0.85, 0.85, 0.85, 0.85, 0.65, 0.65], dtype=torch.float64)
    logits = torch.stack([torch.log(p), torch.log(1 - p)], dim=1)  # softmax gives back (p, 1 - p)
    targets = torch.tensor([0, 0, 0, 1, 0, 0])
    conf, acc, count = calibration_bins(logits, targets, bins=10)
    assert count.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 4, 0]  # bins (0.6, 0.7] and (0.8, 0.9]
    torch.testing.assert_close(conf[8], torch.tensor(0.85, dtype=torch.float64))
    assert acc[8].item() == 0.75 and acc[6].item() == 1.0 and torch.isnan(acc[0])
    expected = 4 / 6 * abs(0.75 - 0.85) + 2 / 6 * abs(1.0 - 0.65)
    assert abs(expected_calibration_error(logits, targets, bins=10) - expected) < 1e-12


def test_ece_is_small_for_a_calibrated_model_and_large_for_an_overconfident_one():
    g = torch.Generator().manual_seed(0)
    N = 20_000
    p = 0.5 + 0.5 * torch.rand(N, generator=g, dtype=torch.float64)  # confidence of class 0
    targets = (torch.rand(N, generator=g, dtype=torch.float64) > p).long()  # right with probability p
    calibrated = torch.stack([torch.log(p), torch.log(1 - p)], dim=1)
    assert expected_calibration_error(calibrated, targets) < 0.02
    assert expected_calibration_error(10 * calibrated, targets) > 0.15  # sharpened: overconfident
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error(calibrated, targets, bins=0)
    with pytest.raises(ValueError, match="targets"):
        calibration_bins(calibrated, targets[:5])


def test_train_epoch_never_forces_a_progress_redraw_per_batch():
    """A forced tqdm refresh on every batch sends one widget message per batch to the notebook front end
    (14,000 in one chapter cell), enough to stall nbval; the postfix is drawn at tqdm's own pace."""
    import torch
    from torch import nn

    from utils.training import train_epoch

    calls = []

    class Bar:
        def update(self, n=1):
            pass

        def set_postfix(self, *args, refresh=True, **kwargs):
            calls.append(refresh)

    model = nn.Linear(4, 3)
    data = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(5)]
    train_epoch(model, data, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), device="cpu",
                progress=Bar())
    assert calls and not any(calls)
