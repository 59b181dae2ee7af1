"""The lab reference implementations in utils.checks reject bad input with a TypeError or
ValueError whose message names the parameter as the signature spells it."""

import re

import pytest
import torch
from torch import nn

from utils.checks import Case, attempt, check_threshold, run_cases, set_strict
from utils.checks import attention as ca
from utils.checks import efficiency as ce
from utils.checks import finetune as cf
from utils.checks import gpt as cg
from utils.checks import optim as co
from utils.checks import rnn as cr

D = torch.float64
X, Y, W = torch.randn(5, 3, dtype=D), torch.randn(5, dtype=D), torch.randn(3, dtype=D)
V4 = torch.zeros(4, dtype=D)
CELL = (torch.randn(2, 3, dtype=D), torch.randn(2, 4, dtype=D), torch.randn(12, 3, dtype=D), torch.randn(12, 4, dtype=D),
        torch.randn(12, dtype=D), torch.randn(12, dtype=D))
MHA = (torch.randn(2, 5, 8, dtype=D), torch.randn(24, 8, dtype=D), torch.randn(24, dtype=D), torch.randn(8, 8, dtype=D),
       torch.randn(8, dtype=D), 2)
HEAD = (torch.randn(2, 4, 6, dtype=D), torch.ones(2, 4, dtype=torch.long), torch.randn(3, 6, dtype=D),
        torch.randn(3, dtype=D))


def _with(args, i, value):
    return args[:i] + (value,) + args[i + 1:]


BAD_CALLS = [
    # (label, function, args, kwargs, parameter named in the message)
    ("X a list", co.ref_mse_gradient, ([[1.0]], Y, W), {}, "X"),
    ("X 1-D", co.ref_mse_gradient, (Y, Y, W), {}, "X"),
    ("X integer", co.ref_logistic_gradient, (X.long(), Y, W), {}, "X"),
    ("y wrong length", co.ref_mse_gradient, (X, Y[:4], W), {}, "y"),
    ("w wrong length", co.ref_logistic_gradient, (X, Y, W[:2]), {}, "w"),
    ("w None", co.ref_mse_gradient, (X, Y, None), {}, "w"),
    ("grad_fn not callable", co.ref_gradient_descent, (3, W, 0.1, 2), {}, "grad_fn"),
    ("w0 a list", co.ref_gradient_descent, (lambda w: w, [0.0], 0.1, 2), {}, "w0"),
    ("lr a string", co.ref_gradient_descent, (lambda w: w, W, "0.1", 2), {}, "lr"),
    ("steps negative", co.ref_gradient_descent, (lambda w: w, W, 0.1, -1), {}, "steps"),
    ("steps a float", co.ref_gradient_descent, (lambda w: w, W, 0.1, 2.5), {}, "steps"),
    ("steps a bool", co.ref_gradient_descent, (lambda w: w, W, 0.1, True), {}, "steps"),
    ("g wrong shape", co.ref_adam_step, (V4, torch.zeros(3, dtype=D), V4, V4, 1), {}, "g"),
    ("t zero", co.ref_adam_step, (V4, V4, V4, V4, 0), {}, "t"),
    ("beta1 = 1", co.ref_adam_step, (V4, V4, V4, V4, 1), {"beta1": 1.0}, "beta1"),
    ("eps negative", co.ref_adam_step, (V4, V4, V4, V4, 1), {"eps": -1e-8}, "eps"),
    ("lr nan", co.ref_adam_step, (V4, V4, V4, V4, 1), {"lr": float("nan")}, "lr"),
    ("x 1-D", cr.gru_reference_step, _with(CELL, 0, torch.randn(3, dtype=D)), {}, "x"),
    ("h a list", cr.gru_reference_step, _with(CELL, 1, [[0.0]]), {}, "h"),
    ("W_hh integer", cr.gru_reference_step, _with(CELL, 3, CELL[3].long()), {}, "W_hh"),
    ("b_ih 2-D", cr.gru_reference_step, _with(CELL, 4, CELL[4][None]), {}, "b_ih"),
    ("x 2-D", ca.mha_reference, _with(MHA, 0, MHA[0][0]), {}, "x"),
    ("num_heads 3", ca.mha_reference, _with(MHA, 5, 3), {}, "num_heads"),
    ("num_heads 0", ca.mha_reference, _with(MHA, 5, 0), {}, "num_heads"),
    ("num_heads a float", ca.mha_reference, _with(MHA, 5, 2.0), {}, "num_heads"),
    ("in_proj_weight wrong shape", ca.mha_reference, _with(MHA, 1, torch.randn(8, 8, dtype=D)), {}, "in_proj_weight"),
    ("out_proj_bias None", ca.mha_reference, _with(MHA, 4, None), {}, "out_proj_bias"),
    ("mask not bool", ca.mha_reference, MHA, {"mask": torch.ones(5, 5)}, "mask"),
    ("logits a list", cg.filter_reference, ([1.0, 2.0],), {}, "logits"),
    ("logits integer", cg.filter_reference, (torch.tensor([1, 2]),), {}, "logits"),
    ("temperature 0", cg.filter_reference, (torch.zeros(3),), {"temperature": 0}, "temperature"),
    ("temperature a string", cg.filter_reference, (torch.zeros(3),), {"temperature": "1"}, "temperature"),
    ("top_k a bool", cg.filter_reference, (torch.zeros(3),), {"top_k": True}, "top_k"),
    ("top_k 0", cg.filter_reference, (torch.zeros(3),), {"top_k": 0}, "top_k"),
    ("top_p 1.5", cg.filter_reference, (torch.zeros(3),), {"top_p": 1.5}, "top_p"),
    ("top_p 0", cg.filter_reference, (torch.zeros(3),), {"top_p": 0.0}, "top_p"),
    ("top_p a string", cg.filter_reference, (torch.zeros(3),), {"top_p": "0.9"}, "top_p"),
    ("last_hidden_state 2-D", cf.head_reference, _with(HEAD, 0, HEAD[0][0]), {}, "last_hidden_state"),
    ("attention_mask a list", cf.head_reference, _with(HEAD, 1, [[1, 1]]), {}, "attention_mask"),
    ("weight wrong width", cf.head_reference, _with(HEAD, 2, torch.randn(3, 5, dtype=D)), {}, "weight"),
    ("bias 2-D", cf.head_reference, _with(HEAD, 3, torch.randn(1, 3, dtype=D)), {}, "bias"),
    ("model not a module", cf.train_step_reference, ("model", {}, torch.zeros(2, dtype=torch.long), None), {}, "model"),
    ("labels float", cf.train_step_reference, (nn.Linear(2, 2), {}, torch.zeros(2), None), {}, "labels"),
    ("optimizer None", cf.train_step_reference, (nn.Linear(2, 2), {}, torch.zeros(2, dtype=torch.long), None), {},
     "optimizer"),
    ("threshold a string", check_threshold, (0.5, "0.9"), {"name": "acc"}, "threshold"),
    ("threshold nan", check_threshold, (0.5, float("nan")), {"name": "acc"}, "threshold"),
    ("name not a str", check_threshold, (0.5, 0.9), {"name": None}, "name"),
    ("strict a string", set_strict, ("no",), {}, "strict"),
    ("strict None", set_strict, (None,), {}, "strict"),
    ("fn not callable", attempt, (None,), {}, "fn"),
    ("cases a string", run_cases, (len, len, "abc"), {"name": "x"}, "cases"),
    ("description not a str", Case, (None,), {}, "description"),
    ("args a list", Case, ("d", [1]), {}, "args"),
    ("kwargs a list", Case, ("d", (), [1]), {}, "kwargs"),
    ("models a string", ce.check_size_and_accuracy, (len, "model", None), {}, "models"),
]


@pytest.mark.parametrize("label,fn,args,kwargs,param", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_the_parameter(label, fn, args, kwargs, param):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    assert re.search(rf"\b{re.escape(param)}\b", str(info.value)), str(info.value)


def test_references_still_compute_on_good_input():
    assert co.ref_mse_gradient(X, Y, W).shape == (3,)
    assert co.ref_gradient_descent(lambda w: w, W, 0.1, 0).equal(W)
    assert cr.gru_reference_step(*CELL)[0].shape == (2, 4)
    assert ca.mha_reference(*MHA)[1].shape == (2, 2, 5, 5)
    assert torch.allclose(cg.filter_reference(torch.zeros(4), top_k=2).sum(), torch.tensor(1.0))
    assert cf.head_reference(*HEAD).shape == (2, 3)
    assert cf.head_reference(*HEAD[:3], None).shape == (2, 3)
