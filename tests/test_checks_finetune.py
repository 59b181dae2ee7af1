"""Lab 5 (fine-tune an encoder): wrong poolings, heads and training steps with their verdicts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, PASS, TODO
from utils.checks import finetune as cf
from utils.pretrained import mean_pool


def _stub(*args, **kwargs):
    raise NotImplementedError


def _m(mask, like):
    return mask.unsqueeze(-1).to(like.dtype)


def _inplace(h, m):
    h *= _m(m, h)
    return h.sum(1) / _m(m, h).sum(1)


def _no_grad(h, m):
    with torch.no_grad():
        return mean_pool(h, m)


POOL_WRONG = [
    ("no division", lambda h, m: (h * _m(m, h)).sum(1), "division is missing"),
    ("plain mean", lambda h, m: h.mean(1), "padding tokens are counted: multiply"),
    ("divided by T", lambda h, m: (h * _m(m, h)).sum(1) / h.shape[1], "counted in the denominator"),
    ("mask not in the sum", lambda h, m: h.sum(1) / _m(m, h).sum(1), "counted in the sum"),
    ("keepdim", lambda h, m: (h * _m(m, h)).sum(1, keepdim=True) / _m(m, h).sum(1, keepdim=True), "without keepdim"),
    ("hidden axis", lambda h, m: h.mean(-1), "averaged over the hidden axis"),
    ("token axis kept", lambda h, m: h * _m(m, h), "still has the token axis"),
    ("mask.sum without keepdim", lambda h, m: (h * _m(m, h)).sum(1) / m.sum(1), "raised RuntimeError"),
    ("hidden states scaled in place", _inplace, "modified its input `last_hidden_state` in place"),
    ("under torch.no_grad", _no_grad, "no gradient flows back"),
    ("raises", lambda h, m: 1 / 0, "ZeroDivisionError"),
    ("off by 0.1", lambda h, m: mean_pool(h, m) + 0.1, "values differ"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", POOL_WRONG, ids=[c[0] for c in POOL_WRONG])
def test_mean_pool_wrong_answers(label, fn, phrase):
    res = cf.check_mean_pool(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


def _masked_select_mean(h, m):
    return torch.stack([h[b][m[b].bool()].mean(0) for b in range(h.shape[0])])


@pytest.mark.parametrize("fn", [mean_pool, _masked_select_mean,
                                lambda h, m: torch.einsum("btc,bt->bc", h, m.to(h.dtype)) / m.sum(1, keepdim=True)])
def test_mean_pool_correct_alternatives(fn):
    res = cf.check_mean_pool(fn, quiet=True)
    assert res.status == PASS and "gradient" in res.message, res.message


def test_mean_pool_plain_mean_is_caught_on_a_padded_case():
    assert "case 'padding" in cf.check_mean_pool(lambda h, m: h.mean(1), quiet=True).message


class GoodHead(nn.Module):
    def __init__(self, hidden_size, num_classes, dropout=0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, num_classes)

    def forward(self, last_hidden_state, attention_mask):
        return self.linear(self.dropout(mean_pool(last_hidden_state, attention_mask)))


def _head(forward, base=GoodHead):
    return type("WrongHead", (base,), {"forward": forward})


class NoBias(GoodHead):
    def __init__(self, hidden_size, num_classes, dropout=0.1):
        super().__init__(hidden_size, num_classes, dropout)
        self.linear = nn.Linear(hidden_size, num_classes, bias=False)


class NoLinear(nn.Module):
    def __init__(self, hidden_size, num_classes):
        super().__init__()
        self.fc = nn.Linear(hidden_size, num_classes)


def _no_grad_pool(self, h, m):
    with torch.no_grad():
        pooled = mean_pool(h, m)
    return self.linear(self.dropout(pooled))


HEAD_WRONG = [
    ("returns probabilities", _head(lambda self, h, m: self.linear(mean_pool(h, m)).softmax(-1)), "returns probabilities"),
    ("first token only", _head(lambda self, h, m: self.linear(h[:, 0])), "first token only"),
    ("plain mean", _head(lambda self, h, m: self.linear(h.mean(1))), "counts padding tokens"),
    ("one score per token", _head(lambda self, h, m: self.linear(h)), "one score per token"),
    ("bias not added", _head(lambda self, h, m: F.linear(mean_pool(h, m), self.linear.weight)), "bias of self.linear"),
    ("dropout never used", _head(lambda self, h, m: self.linear(mean_pool(h, m))), "never applied"),
    ("F.dropout always on", _head(lambda self, h, m: self.linear(F.dropout(mean_pool(h, m), 0.5))), "random in eval mode"),
    ("hidden states detached", _head(lambda self, h, m: self.linear(self.dropout(mean_pool(h.detach(), m)))),
     "no gradient reaches last_hidden_state"),
    ("pooling under no_grad", _head(_no_grad_pool), "encoder"),
    ("nn.Linear(..., bias=False)", NoBias, "bias=False"),
    ("no self.linear", NoLinear, "self.linear"),
    ("not a module", lambda c, k: "not a module", "nn.Module"),
    ("an instance, not the class", GoodHead(6, 3), "not an instance"),
    ("__init__ raises", type("BadInit", (GoodHead,), {"__init__": lambda self, c, k: 1 / 0}), "ZeroDivisionError"),
    ("forward raises", _head(lambda self, h, m: 1 / 0), "ZeroDivisionError"),
]


@pytest.mark.parametrize("label,cls,phrase", HEAD_WRONG, ids=[c[0] for c in HEAD_WRONG])
def test_head_wrong_answers(label, cls, phrase):
    res = cf.check_classification_head(cls, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_head_correct_alternatives_and_stubs():
    assert cf.check_classification_head(GoodHead, quiet=True).status == PASS
    dropout_on_tokens = _head(lambda self, h, m: self.linear(mean_pool(self.dropout(h), m)))
    assert cf.check_classification_head(dropout_on_tokens, quiet=True).status == PASS
    functional = _head(lambda self, h, m: F.linear(F.dropout(mean_pool(h, m), 0.1, self.training),
                                                   self.linear.weight, self.linear.bias))
    assert cf.check_classification_head(functional, quiet=True).status == PASS
    assert cf.check_classification_head(_head(lambda self, h, m: _stub()), quiet=True).status == TODO

    class StubInit(nn.Module):
        def __init__(self, hidden_size, num_classes):
            raise NotImplementedError

    assert cf.check_classification_head(StubInit, quiet=True).status == TODO


def _step(order, logits=lambda model, inputs: model(inputs), ret="item"):
    def fn(model, inputs, labels, optimizer):
        loss = F.cross_entropy(logits(model, inputs), labels)
        for op in order:
            {"zero": optimizer.zero_grad, "backward": loss.backward, "step": optimizer.step}[op]()
        return {"item": lambda: loss.item(), "tensor": lambda: loss, "none": lambda: None}[ret]()
    return fn


STEP_WRONG = [
    ("no zero_grad", _step(["backward", "step"]), "call optimizer.zero_grad() before loss.backward()"),
    ("zero_grad between backward and step", _step(["backward", "zero", "step"]),
     "between loss.backward() and optimizer.step()"),
    ("no step", _step(["zero", "backward"]), "optimizer.step() is never called"),
    ("step before backward", _step(["zero", "step", "backward"]), "runs before loss.backward()"),
    ("softmax before the loss", _step(["zero", "backward", "step"], logits=lambda m, i: m(i).softmax(-1)),
     "computed on probabilities"),
    ("logits detached", _step(["zero", "backward", "step"], logits=lambda m, i: m(i).detach()), "cut off from the graph"),
    ("returns nothing", _step(["zero", "backward", "step"], ret="none"), "loss.item()"),
    ("model(**inputs)", lambda model, inputs, labels, optimizer: model(**inputs), "TypeError"),
]


@pytest.mark.parametrize("label,fn,phrase", STEP_WRONG, ids=[c[0] for c in STEP_WRONG])
def test_train_step_wrong_answers(label, fn, phrase):
    res = cf.check_train_step(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_train_step_item_before_backward_is_explained():
    def item_first(model, inputs, labels, optimizer):
        loss = F.cross_entropy(model(inputs), labels).item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    res = cf.check_train_step(item_first, quiet=True)
    assert res.status == FAIL and "use .item() only for the number you return" in res.message


def test_train_step_correct_alternatives():
    assert cf.check_train_step(cf.train_step_reference, quiet=True).status == PASS
    assert cf.check_train_step(_step(["zero", "backward", "step"], ret="tensor"), quiet=True).status == PASS

    def model_zero_grad_first(model, inputs, labels, optimizer):
        model.zero_grad()
        loss = nn.CrossEntropyLoss()(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    assert cf.check_train_step(model_zero_grad_first, quiet=True).status == PASS
    assert cf.check_train_step(_stub, quiet=True).status == TODO


def test_test_accuracy_threshold():
    assert cf.check_test_accuracy(0.9, 0.8, quiet=True).status == PASS
    assert cf.check_test_accuracy(0.7, 0.8, quiet=True).status == FAIL
    assert cf.check_test_accuracy(None, quiet=True).status == TODO


def test_checks_do_not_change_their_callers_tensors():
    h = torch.randn(2, 3, 4)
    before = h.clone()
    cf.check_mean_pool(lambda h_, m_: h_.mul_(0).sum(1), quiet=True)
    torch.testing.assert_close(h, before)
