import torch

from utils.checks import FAIL, PASS, TODO
from utils.checks.efficiency import _KD_MISTAKES, _Q_MISTAKES, check_distillation_loss, check_quantize_int8
from utils.efficiency import distillation_loss, quantize_int8_symmetric


def test_references_pass_and_stubs_are_todo():
    assert check_distillation_loss(distillation_loss, quiet=True).status == PASS
    assert check_quantize_int8(quantize_int8_symmetric, quiet=True).status == PASS

    def stub(*a):
        raise NotImplementedError

    assert check_distillation_loss(stub, quiet=True).status == TODO
    assert check_quantize_int8(stub, quiet=True).status == TODO


def test_distillation_mistakes_are_named():
    for wrong, why in _KD_MISTAKES:
        res = check_distillation_loss(wrong, quiet=True)
        assert res.status == FAIL and why in res.message, res.message


def test_quantization_mistakes_are_named():
    for wrong, why in _Q_MISTAKES:
        res = check_quantize_int8(wrong, quiet=True)
        assert res.status == FAIL and why in res.message, res.message
    res = check_quantize_int8(lambda w: (w, 1.0), quiet=True)
    assert res.status == FAIL and "int8" in res.message
