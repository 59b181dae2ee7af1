import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from utils.efficiency import (DistillationLoss, distillation_dataset, distillation_loss, global_magnitude_prune,
                              model_size_bytes, prunable_weights, quantize_dynamic_int8, quantize_int8_symmetric,
                              sparsity, time_inference)
from utils.training import evaluate, fit


def tiny_mlp(seed: int = 0, hidden: int = 16) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 3))


# ---------------------------------------------------------------------------------------- distillation

def test_distillation_loss_matches_a_hand_computation():
    s = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
    t = [[3.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    y = [0, 2]
    T, alpha = 2.0, 0.7

    def softmax(row, T):
        e = [math.exp(v / T) for v in row]
        return [v / sum(e) for v in e]

    kl = sum(sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(softmax(tr, T), softmax(sr, T)))
             for sr, tr in zip(s, t)) / 2
    ce = -sum(math.log(softmax(sr, 1.0)[yi]) for sr, yi in zip(s, y)) / 2
    expected = alpha * T * T * kl + (1 - alpha) * ce
    got = distillation_loss(torch.tensor(s, dtype=torch.float64), torch.tensor(t, dtype=torch.float64),
                            torch.tensor(y), temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_distillation_loss_limits_and_gradient_flow():
    torch.manual_seed(0)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 4, requires_grad=True)
    y = torch.randint(0, 4, (5,))
    torch.testing.assert_close(distillation_loss(s, t, y, alpha=0.0), F.cross_entropy(s, y))
    assert distillation_loss(t, t, y, temperature=3.0, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    distillation_loss(s, t, y).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # the teacher is not trained


@pytest.mark.parametrize("call, word", [
    (lambda: distillation_loss(torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.long)), "student_logits"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)), "teacher_logits"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long)), "targets"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 0.0), "temperature"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 2.0, 1.5), "alpha"),
    (lambda: DistillationLoss()(torch.zeros(2, 3), torch.zeros(2, 3)), "packed"),
])
def test_bad_distillation_input_is_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_packed_loss_equals_direct_loss_and_trains_with_fit():
    torch.manual_seed(0)
    X, y = torch.randn(40, 8), torch.randint(0, 3, (40,))
    teacher_logits = torch.randn(40, 3)
    ds = distillation_dataset(X, y, teacher_logits)
    assert ds.tensors[1].shape == (40, 4)
    student = tiny_mlp()
    loss_fn = DistillationLoss(temperature=2.0, alpha=0.5)
    torch.testing.assert_close(loss_fn(student(X), ds.tensors[1]),
                               distillation_loss(student(X), teacher_logits, y, 2.0, 0.5))
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    hist = fit(student, loader, epochs=5, lr=1e-2, loss_fn=loss_fn, classification=False, progress=False)
    assert hist.train_loss[-1] < hist.train_loss[0]


# ---------------------------------------------------------------------------------------- size, quantization

def test_model_size_counts_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16))
    n_params = 8 * 16 + 16 + 16 + 16
    n_buffers = 16 + 16  # running mean and variance (float32), plus num_batches_tracked (one int64)
    assert model_size_bytes(model, serialized=False) == 4 * (n_params + n_buffers) + 8
    assert model_size_bytes(model) >= model_size_bytes(model, serialized=False)
    with pytest.raises(TypeError, match="model"):
        model_size_bytes(torch.zeros(3))


def test_our_int8_rule_equals_pytorch_dynamic_quantization():
    model = tiny_mlp(hidden=32)
    qmodel = quantize_dynamic_int8(model)
    for layer, qlayer in ((model[0], qmodel[0]), (model[2], qmodel[2])):
        q, scale = quantize_int8_symmetric(layer.weight)
        w_q = qlayer.weight()  # torch's quantized weight
        assert w_q.q_scale() == scale and w_q.q_zero_point() == 0
        assert torch.equal(q, w_q.int_repr())
        assert (q.float() * scale - layer.weight).abs().max() <= scale / 2 * (1 + 1e-4)


def test_quantized_model_is_smaller_close_and_leaves_the_original_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).train()
    qmodel = quantize_dynamic_int8(model)
    assert model.training and isinstance(model[0], nn.Linear)  # original unchanged
    assert "quantized.dynamic" in type(qmodel[0]).__module__
    x = torch.randn(16, 64)
    with torch.no_grad():
        ref, out = model(x), qmodel(x)
    assert (ref - out).abs().max() < 0.05 * ref.abs().max()
    ratio = model_size_bytes(model) / model_size_bytes(qmodel)
    assert 3.0 < ratio < 4.0  # int8 is 4x smaller than float32, minus scales and format overhead


# ---------------------------------------------------------------------------------------- pruning

@pytest.mark.parametrize("amount", [0.0, 0.5, 0.9])
def test_global_magnitude_prune_hits_the_requested_sparsity(amount):
    model = tiny_mlp(hidden=32)
    total = sum(m.weight.numel() for m, _ in prunable_weights(model))
    kept_max = max(m.weight.abs().max().item() for m, _ in prunable_weights(model))
    global_magnitude_prune(model, amount)
    assert sparsity(model) == pytest.approx(round(amount * total) / total)
    assert max(m.weight.abs().max().item() for m, _ in prunable_weights(model)) == kept_max  # largest weights kept


def test_pruning_is_global_by_magnitude_and_can_be_made_permanent():
    model = tiny_mlp(hidden=32)
    weights = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable_weights(model)])
    threshold = weights.sort().values[int(0.6 * len(weights)) - 1]
    global_magnitude_prune(model, 0.6, permanent=True)
    for m, _ in prunable_weights(model):
        assert not hasattr(m, "weight_mask") and isinstance(m.weight, nn.Parameter)
        nonzero = m.weight[m.weight != 0].abs()
        assert nonzero.numel() == 0 or nonzero.min() > threshold
    assert sparsity(model) == pytest.approx(0.6, abs=1 / len(weights))


def test_pruned_weights_stay_zero_while_fine_tuning():
    torch.manual_seed(0)
    X, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    model = global_magnitude_prune(tiny_mlp(), 0.8)
    before = sparsity(model)
    fit(model, DataLoader(list(zip(X, y)), batch_size=8), epochs=3, lr=1e-2, progress=False)
    assert sparsity(model) == before
    assert evaluate(model, DataLoader(list(zip(X, y)), batch_size=32))[1] >= 0.0


@pytest.mark.parametrize("call, word", [
    (lambda: global_magnitude_prune(tiny_mlp(), 1.0), "amount"),
    (lambda: global_magnitude_prune(nn.ReLU(), 0.5), "no Linear"),
    (lambda: sparsity(nn.ReLU()), "no Linear"),
    (lambda: time_inference(tiny_mlp(), torch.zeros(1, 8), 0), "repeats"),
])
def test_bad_pruning_and_timing_input_is_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# ---------------------------------------------------------------------------------------- timing

def test_time_inference_returns_a_positive_median_and_eval_mode():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5)).train()
    ms = time_inference(model, torch.randn(4, 8), repeats=5, warmup=1)
    assert isinstance(ms, float) and ms > 0
    assert not model.training
    calls = []
    time_inference(lambda x: calls.append(x.shape), torch.zeros(2, 3), repeats=4, warmup=2)
    assert len(calls) == 6
