import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, PASS, TODO
from utils.checks import finetune as cf
from utils.pretrained import mean_pool


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_mean_pool_reference_passes_and_stub_is_not_yet_implemented(capsys):
    assert cf.check_mean_pool(mean_pool).status == PASS
    assert "PASS" in capsys.readouterr().out
    assert cf.check_mean_pool(_stub).status == TODO


def _m(mask, like):
    return mask.unsqueeze(-1).to(like.dtype)


def test_mean_pool_mistakes_are_named():
    cases = {
        "division is missing": lambda h, m: (h * _m(m, h)).sum(1),
        "padding tokens are counted: multiply": lambda h, m: h.mean(1),
        "counted in the denominator": lambda h, m: (h * _m(m, h)).sum(1) / h.shape[1],
        "counted in the sum": lambda h, m: h.sum(1) / _m(m, h).sum(1),
        "without keepdim": lambda h, m: (h * _m(m, h)).sum(1, keepdim=True) / _m(m, h).sum(1, keepdim=True),
        "averaged over the hidden axis": lambda h, m: h.mean(-1),
    }
    for phrase, wrong in cases.items():
        res = cf.check_mean_pool(wrong, quiet=True)
        assert res.status == FAIL and phrase in res.message, (phrase, res.message)
    # the plain mean is right without padding, so the verdict must come from a padded case
    assert "case 'padding" in cf.check_mean_pool(lambda h, m: h.mean(1), quiet=True).message
    res = cf.check_mean_pool(lambda h, m: 1 / 0, quiet=True)
    assert res.status == FAIL and "ZeroDivisionError" in res.message
    res = cf.check_mean_pool(lambda h, m: mean_pool(h, m) + 0.1, quiet=True)
    assert res.status == FAIL and "values differ" in res.message


class GoodHead(nn.Module):
    def __init__(self, hidden_size, num_classes, dropout=0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, num_classes)

    def forward(self, last_hidden_state, attention_mask):
        return self.linear(self.dropout(mean_pool(last_hidden_state, attention_mask)))


def _head(forward):
    return type("WrongHead", (GoodHead,), {"forward": forward})


def test_head_reference_passes_and_mistakes_are_named():
    assert cf.check_classification_head(GoodHead, quiet=True).status == PASS
    wrong = {
        "returns probabilities": lambda self, h, m: self.linear(mean_pool(h, m)).softmax(-1),
        "first token only": lambda self, h, m: self.linear(h[:, 0]),
        "counts padding tokens": lambda self, h, m: self.linear(h.mean(1)),
        "one score per token": lambda self, h, m: self.linear(h),
    }
    for phrase, forward in wrong.items():
        res = cf.check_classification_head(_head(forward), quiet=True)
        assert res.status == FAIL and phrase in res.message, (phrase, res.message)
    assert cf.check_classification_head(_head(lambda self, h, m: _stub()), quiet=True).status == TODO


def test_head_without_linear_layer_or_module_fails_clearly():
    class NoLinear(nn.Module):
        def __init__(self, hidden_size, num_classes):
            super().__init__()
            self.fc = nn.Linear(hidden_size, num_classes)

    res = cf.check_classification_head(NoLinear, quiet=True)
    assert res.status == FAIL and "self.linear" in res.message
    res = cf.check_classification_head(lambda c, k: "not a module", quiet=True)
    assert res.status == FAIL and "nn.Module" in res.message


def test_train_step_reference_passes_and_mistakes_are_named():
    assert cf.check_train_step(cf.train_step_reference, quiet=True).status == PASS
    assert cf.check_train_step(_stub, quiet=True).status == TODO

    def no_zero_grad(model, inputs, labels, optimizer):
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    def returns_tensor(model, inputs, labels, optimizer):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss  # a 0-d tensor is accepted as a number

    def returns_nothing(model, inputs, labels, optimizer):
        cf.train_step_reference(model, inputs, labels, optimizer)

    res = cf.check_train_step(no_zero_grad, quiet=True)
    assert res.status == FAIL and "zero_grad" in res.message
    assert cf.check_train_step(returns_tensor, quiet=True).status == PASS
    res = cf.check_train_step(returns_nothing, quiet=True)
    assert res.status == FAIL and "loss.item()" in res.message
    res = cf.check_train_step(lambda model, inputs, labels, optimizer: model(**inputs), quiet=True)
    assert res.status == FAIL and "TypeError" in res.message


def test_train_step_softmax_and_missing_step_are_named():
    def softmax_first(model, inputs, labels, optimizer):
        loss = F.cross_entropy(model(inputs).softmax(-1), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def no_step(model, inputs, labels, optimizer):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        return loss.item()

    assert "probabilities" in cf.check_train_step(softmax_first, quiet=True).message
    assert "never change" in cf.check_train_step(no_step, quiet=True).message


def test_test_accuracy_threshold():
    assert cf.check_test_accuracy(0.9, 0.8, quiet=True).status == PASS
    assert cf.check_test_accuracy(0.7, 0.8, quiet=True).status == FAIL
    assert cf.check_test_accuracy(None, quiet=True).status == TODO


def test_checks_do_not_change_global_seeded_state_of_inputs():
    h = torch.randn(2, 3, 4)
    m = torch.ones(2, 3, dtype=torch.long)
    before = h.clone()
    cf.check_mean_pool(lambda h_, m_: h_.mul_(0).sum(1), quiet=True)
    torch.testing.assert_close(h, before)
