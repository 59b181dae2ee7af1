"""Fuzz: every lab checker gets garbage (return values of every kind, exceptions of every kind,
inputs mutated in place, non-functions) and must answer with a verdict: never raise, never pass
garbage, and never need its own safety net ("the checker itself hit an error")."""

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils.attention import scaled_dot_product_attention
from utils.checks import FAIL, PASS, TODO, CheckResult, check_threshold
from utils.checks import attention as ca
from utils.checks import conv as cc
from utils.checks import efficiency as ce
from utils.checks import finetune as cf
from utils.checks import gpt as cg
from utils.checks import optim as co
from utils.checks import rnn as cr
from utils.efficiency import model_size_bytes, quantize_dynamic_int8, quantize_int8_symmetric
from utils.rnn import CellWeights, run_gru
from utils.training import evaluate

SAFETY_NET = "the checker itself hit an error"


class _BadStr(Exception):
    def __str__(self):
        raise RuntimeError("unprintable")


class _Weird:
    def __eq__(self, other):
        raise RuntimeError("no comparison")

    def __len__(self):
        raise RuntimeError("no length")

    def __float__(self):
        raise RuntimeError("no float")


def garbage() -> list[tuple[str, object]]:
    """Fresh garbage values (tensors are rebuilt on every call, since checkers may see them mutated)."""
    sparse = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([1.0, 2.0]), (2, 2),
                                     check_invariants=True)
    return [
        ("None", None), ("zero", 0), ("float", 1.5), ("negative int", -1), ("bool", True), ("huge int", 10 ** 400),
        ("nan", float("nan")), ("inf", float("inf")), ("complex", 1 + 2j), ("str", "text"), ("bytes", b"x"),
        ("empty list", []), ("list", [1, 2]), ("pair of None", (None, None)), ("triple", (1, 2, 3)),
        ("empty dict", {}), ("dict", {"z": 1, "r": None}), ("set", {1}),
        ("np reversed", np.arange(6)[::-1]), ("np strided 2-D", np.zeros((4, 6))[::-1, ::2]),
        ("np object", np.array([object(), None], dtype=object)), ("np str", np.array(["a", "b"])),
        ("np float64 scalar", np.float64(1.0)), ("np int8 scalar", np.int8(3)), ("np bool", np.array([True, False])),
        ("np int8 matrix", np.zeros((4, 6), dtype=np.int8)), ("np 0-d", np.array(2.0)),
        ("tensor 0-d", torch.tensor(1.0)), ("tensor empty", torch.zeros(0)), ("tensor (3, 0)", torch.zeros(3, 0)),
        ("tensor 4-D", torch.randn(2, 3, 4, 5)), ("tensor nan", torch.full((2, 5), float("nan"))),
        ("tensor inf", torch.tensor([float("inf")])), ("complex tensor", torch.zeros(2, dtype=torch.complex64)),
        ("bool tensor", torch.ones(2, dtype=torch.bool)), ("half tensor", torch.zeros(4, dtype=torch.float16)),
        ("bfloat16 tensor", torch.zeros(4, dtype=torch.bfloat16)), ("int tensor", torch.zeros(2, 3, dtype=torch.int64)),
        ("int8 tensor", torch.zeros(4, 6, dtype=torch.int8)), ("meta tensor", torch.empty(2, 3, device="meta")),
        ("meta 0-d", torch.empty((), device="meta")), ("sparse tensor", sparse),
        ("grad tensor", torch.randn(3, requires_grad=True)), ("dict of tensors", {"z": torch.zeros(2)}),
        ("object", object()), ("weird object", _Weird()), ("function", len), ("class", int),
        ("generator", (x for x in [])), ("module", nn.Linear(2, 2)), ("range", range(3)),
    ]


def _raisers() -> list[Callable]:
    def make(exc):
        def fn(*args, **kwargs):
            raise exc
        return fn

    def recurse(*args, **kwargs):
        return recurse(*args, **kwargs)

    return [make(ValueError("bad")), make(KeyError("k")), make(IndexError("i")), make(AssertionError("a")),
            make(StopIteration()), make(SystemExit(1)), make(_BadStr()), make(MemoryError()),
            make(NotImplementedError("'addmm' not implemented for 'Half'")), make(ZeroDivisionError()),
            make(RuntimeError("CUDA error: device-side assert triggered")), recurse]


def _mutators() -> list[Callable]:
    def zero_all(*args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, torch.Tensor) and not a.requires_grad:
                a.zero_()
        return None

    def resize_all(*args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, torch.Tensor) and not a.requires_grad:
                a.resize_(0)
        return args[0] if args else None

    def return_first(*args, **kwargs):
        return args[0] if args else kwargs

    def nan_all(*args, **kwargs):
        for a in args:
            if isinstance(a, torch.Tensor) and a.is_floating_point() and not a.requires_grad:
                a.fill_(float("nan"))
        return args[0] if args else None

    return [zero_all, resize_all, return_first, nan_all]


def _replace(value, i, g):
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    if i < len(items):
        items[i] = g
    else:  # one item too many
        items.append(g)
    return tuple(items)


def _attention_ref(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v, mask)


def _seq_ref(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    return run_gru(X, CellWeights(W_ih, W_hh, b_ih, b_hh), h0)


def _filter_ref(logits, temperature=1.0, top_k=None, top_p=None):
    return cg.filter_reference(logits, temperature, top_k, top_p)


# (checker, reference that computes the right answer from the same arguments, or None)
FUNCTION_CHECKERS = {
    "mse_gradient": (co.check_mse_gradient, co.ref_mse_gradient),
    "logistic_gradient": (co.check_logistic_gradient, co.ref_logistic_gradient),
    "gradient_descent": (co.check_gradient_descent, co.ref_gradient_descent),
    "adam_step": (co.check_adam_step, co.ref_adam_step),
    "conv2d": (cc.check_conv2d, cc._reference_conv),
    "max_pool2d": (cc.check_max_pool2d, None),
    "gru_step": (cr.check_gru_cell, cr.gru_reference_step),
    "gru_sequence": (cr.check_gru_sequence, _seq_ref),
    "rnn train_step": (cr.check_train_step, None),
    "attention": (ca.check_attention, _attention_ref),
    "multi_head_attention": (ca.check_multi_head_attention, ca.mha_reference),
    "mean_pool": (cf.check_mean_pool, None),
    "finetune train_step": (cf.check_train_step, None),
    "filter_logits": (cg.check_filter_logits, _filter_ref),
    "generate_text": (cg.check_generate_text, None),
    "gpt train_step": (cg.check_train_step, None),
    "distillation_loss": (ce.check_distillation_loss, None),
    "quantize_int8": (ce.check_quantize_int8, lambda w: quantize_int8_symmetric(w)),
}


def _assert_verdict(res, label, *, may_pass=False):
    assert isinstance(res, CheckResult), label
    assert res.status in (PASS, FAIL, TODO), label
    assert SAFETY_NET not in res.message, (label, res.message)
    if not may_pass:
        assert res.status != PASS, (label, res.message)


def _learner_variants(reference):
    variants = []
    for label, _ in garbage():
        def pick(label=label):
            return dict(garbage())[label]
        variants.append((f"returns {label}", lambda *a, _p=pick, **k: _p()))
        variants.append((f"returns a pair of {label}", lambda *a, _p=pick, **k: (_p(), _p())))
        variants.append((f"returns a triple of {label}", lambda *a, _p=pick, **k: (_p(), _p(), _p())))
        if reference is not None:
            for i in range(3):
                variants.append((f"element {i} replaced by {label}",
                                 lambda *a, _p=pick, _i=i, **k: _replace(reference(*a, **k), _i, _p())))
            variants.append((f"gates replaced by {label}",
                             lambda *a, _p=pick, **k: (_replace(reference(*a, **k), 0, None)[0],
                                                       {"z": _p(), "r": _p(), "candidate": _p()})))
    variants += [(f"raises {i}", fn) for i, fn in enumerate(_raisers())]
    variants += [(f"mutates {i}", fn) for i, fn in enumerate(_mutators())]
    return variants


@pytest.mark.parametrize("key", list(FUNCTION_CHECKERS))
def test_function_checkers_survive_garbage(key):
    checker, reference = FUNCTION_CHECKERS[key]
    for label, fn in _learner_variants(reference):
        _assert_verdict(checker(fn, quiet=True), f"{key}: {label}")
    for label, value in garbage():  # not a function at all
        _assert_verdict(checker(value, quiet=True), f"{key}: fn = {label}")


def test_class_and_model_checkers_survive_garbage():
    for label, value in garbage():
        head = type("GarbageHead", (nn.Module,), {
            "__init__": lambda self, c, k: (nn.Module.__init__(self), setattr(self, "linear", nn.Linear(c, k)))[0],
            "forward": lambda self, h, m, _v=value: _v})
        _assert_verdict(cf.check_classification_head(head, quiet=True), f"head forward returns {label}")
        _assert_verdict(cf.check_classification_head(value, quiet=True), f"head_cls = {label}")
        _assert_verdict(cc.check_cnn_model(lambda _v=value: _v, quiet=True), f"build_cnn returns {label}")
        model = type("GarbageNet", (nn.Module,), {
            "__init__": lambda self: (nn.Module.__init__(self), setattr(self, "w", nn.Linear(2, 2)))[0],
            "forward": lambda self, x, _v=value: _v})
        _assert_verdict(cc.check_cnn_model(model, quiet=True), f"model returns {label}")
    for fn in _raisers():
        _assert_verdict(cf.check_classification_head(fn, quiet=True), "head raises")
        _assert_verdict(cc.check_cnn_model(fn, quiet=True), "build_cnn raises")


def test_value_checkers_survive_garbage():
    for label, value in garbage():
        for res in (check_threshold(value, 0.5, name="x", quiet=True), co.check_final_loss(value, 0.2, quiet=True),
                    cc.check_cnn_accuracy(value, quiet=True), cf.check_test_accuracy(value, quiet=True),
                    cc.check_cnn_accuracy(0.99, model=value if isinstance(value, nn.Module) else None, quiet=True)):
            _assert_verdict(res, f"value {label}", may_pass=True)


def test_size_and_accuracy_survives_garbage():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3)).eval()
    loader = DataLoader(TensorDataset(torch.randn(10, 4), torch.randint(0, 3, (10,))), batch_size=5)
    models = [model, quantize_dynamic_int8(model)]
    right = lambda m: (model_size_bytes(m), evaluate(m, loader, device="cpu")[1])  # noqa: E731
    for label, _ in garbage():
        def pick(label=label):
            return dict(garbage())[label]
        for fn in (lambda m, _p=pick: _p(), lambda m, _p=pick: (_p(), _p()),
                   lambda m, _p=pick: (right(m)[0], _p()), lambda m, _p=pick: (_p(), right(m)[1])):
            _assert_verdict(ce.check_size_and_accuracy(fn, models, loader, quiet=True), f"size: {label}")
    for fn in _raisers():
        _assert_verdict(ce.check_size_and_accuracy(fn, models, loader, quiet=True), "size raises")


def test_garbage_list_is_varied():
    kinds = {type(v).__name__ for _, v in garbage()}
    assert len(garbage()) >= 50 and {"NoneType", "ndarray", "Tensor", "tuple", "dict"} <= kinds
    assert not math.isfinite(dict(garbage())["nan"])
