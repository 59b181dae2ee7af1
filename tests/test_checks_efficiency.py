"""Lab 7 (efficiency): wrong distillation losses, quantizers and measurements with their verdicts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.checks import FAIL, PASS, TODO
from utils.checks import efficiency as ce
from utils.efficiency import distillation_loss, model_size_bytes, quantize_dynamic_int8, quantize_int8_symmetric
from utils.training import evaluate


def _stub(*args, **kwargs):
    raise NotImplementedError


def kd_loss(student_logits, teacher_logits, targets, temperature, alpha):
    T = temperature
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    log_p_t = F.log_softmax(teacher_logits / T, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(student_logits, targets)


def _kl_through_item(s, t, y, T, a):
    log_s, log_t = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean().item()
    return a * T * T * kl + (1 - a) * F.cross_entropy(s, y)


def _ce_through_item(s, t, y, T, a):
    log_s, log_t = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
    return a * T * T * kl + (1 - a) * F.cross_entropy(s, y).item()


def _student_detached(s, t, y, T, a):
    return kd_loss(s.detach(), t, y, T, a)


KD_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in ce._KD_MISTAKES] + [
    ("KL through .item()", _kl_through_item, "the soft (KL) term passes no gradient"),
    ("cross-entropy through .item()", _ce_through_item, "the cross-entropy term passes no gradient"),
    ("student detached", _student_detached, "no gradient flows back"),
    ("returns loss.item()", lambda *a: kd_loss(*a).item(), "as a tensor (no .item())"),
    ("per-example losses", lambda s, t, y, T, a: F.cross_entropy(s, y, reduction="none"), "return one number"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", KD_WRONG, ids=[c[0] for c in KD_WRONG])
def test_distillation_loss_wrong_answers(label, fn, phrase):
    res = ce.check_distillation_loss(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


def _kd_with_kl_div(s, t, y, T, a):
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    return a * T ** 2 * kl + (1 - a) * F.cross_entropy(s, y)


@pytest.mark.parametrize("fn", [kd_loss, distillation_loss, _kd_with_kl_div])
def test_distillation_loss_correct_alternatives(fn):
    res = ce.check_distillation_loss(fn, quiet=True)
    assert res.status == PASS and "gradient" in res.message, res.message


def quantize_int8(w):
    scale = w.abs().max() / 127.5
    return torch.clamp(torch.round(w / scale), -128, 127).to(torch.int8), scale.item()


def _per_row(w):
    s = w.abs().amax(dim=-1, keepdim=True) / 127.5
    return torch.clamp(torch.round(w / s), -128, 127).to(torch.int8), s


Q_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in ce._Q_MISTAKES] + [
    ("returns None", lambda w: None, "return a pair (q, scale)"),
    ("scale None", lambda w: (quantize_int8(w)[0], None), "scale must be one number"),
    ("one scale per row (exercise 2)", _per_row, "one scale per row"),
    ("NumPy q", lambda w: (quantize_int8(w)[0].numpy(), quantize_int8(w)[1]), "got a NumPy array"),
    ("NumPy q, negative strides", lambda w: (quantize_int8(w)[0].numpy()[::-1], quantize_int8(w)[1]), "NumPy"),
    ("float q", lambda w: (torch.round(w / quantize_int8(w)[1]), quantize_int8(w)[1]), "dtype torch.int8"),
    ("q flattened", lambda w: (quantize_int8(w)[0].flatten(), quantize_int8(w)[1]), "expected shape"),
    ("pair swapped", lambda w: quantize_int8(w)[::-1], "torch.int8"),
    ("w modified in place", lambda w: quantize_int8(w.div_(2)), "modified its input `w`"),
]


@pytest.mark.parametrize("label,fn,phrase", Q_WRONG, ids=[c[0] for c in Q_WRONG])
def test_quantize_wrong_answers(label, fn, phrase):
    res = ce.check_quantize_int8(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [quantize_int8, quantize_int8_symmetric,
                                lambda w: (quantize_int8(w)[0], torch.tensor(quantize_int8(w)[1])),
                                lambda w: (quantize_int8(w)[0], np.float32(quantize_int8(w)[1]))])
def test_quantize_correct_alternatives(fn):
    assert ce.check_quantize_int8(fn, quiet=True).status == PASS
    assert ce.check_quantize_int8(_stub, quiet=True).status == TODO


@pytest.fixture(scope="module")
def models_and_loader():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    g = torch.Generator().manual_seed(1)
    loader = DataLoader(TensorDataset(torch.randn(120, 64, generator=g), torch.randint(0, 10, (120,), generator=g)),
                        batch_size=50)
    return [model, quantize_dynamic_int8(model)], loader


def _measure(size=lambda m: model_size_bytes(m), acc=lambda m, loader: evaluate(m, loader, device="cpu")[1]):
    def fn_factory(loader):
        return lambda model: (size(model), acc(model, loader))
    return fn_factory


SIZE_WRONG = [
    ("loss instead of accuracy", _measure(acc=lambda m, ld: evaluate(m, ld, device="cpu")[0]), "the test loss"),
    ("unserialized size", _measure(size=lambda m: model_size_bytes(m, serialized=False)), "in-memory size"),
    ("parameter count", _measure(size=lambda m: sum(p.numel() for p in m.parameters())), "parameter count"),
    ("megabytes", _measure(size=lambda m: model_size_bytes(m) / 1e6), "megabytes"),
    ("percentage", _measure(acc=lambda m, ld: 100 * evaluate(m, ld, device="cpu")[1]), "percentage"),
    ("swapped", lambda ld: lambda m: (evaluate(m, ld, device="cpu")[1], model_size_bytes(m)), "swapped"),
    ("None", lambda ld: lambda m: None, "return a pair"),
    ("strings", lambda ld: lambda m: ("1 MB", "98%"), "return two numbers"),
]


@pytest.mark.parametrize("label,factory,phrase", SIZE_WRONG, ids=[c[0] for c in SIZE_WRONG])
def test_size_and_accuracy_wrong_answers(models_and_loader, label, factory, phrase):
    models, loader = models_and_loader
    res = ce.check_size_and_accuracy(factory(loader), models, loader, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_size_and_accuracy_correct_alternatives(models_and_loader):
    models, loader = models_and_loader
    assert ce.check_size_and_accuracy(_measure()(loader), models, loader, quiet=True).status == PASS
    as_tensors = lambda m: (torch.tensor(model_size_bytes(m)), torch.tensor(evaluate(m, loader, device="cpu")[1]))  # noqa: E731
    assert ce.check_size_and_accuracy(as_tensors, models, loader, quiet=True).status == PASS
    assert ce.check_size_and_accuracy(_stub, models[0], loader, quiet=True).status == TODO
    with pytest.raises(TypeError, match="models"):
        ce.check_size_and_accuracy(_stub, ["not a model"], loader)


def test_quantize_per_tensor_gets_a_hint():
    def torch_quantized(w):
        scale = w.abs().max().item() / 127.5
        return torch.quantize_per_tensor(w, scale, 0, torch.qint8), scale

    res = ce.check_quantize_int8(torch_quantized, quiet=True)
    assert res.status == FAIL and "int_repr()" in res.message
