import pytest
import torch

from utils import checks
from utils.checks import FAIL, PASS, TODO, Case, attempt, check_threshold, explain_mismatch, run_cases


def _ref(x):
    return x * 2


CASES = [Case("small", (torch.arange(4.0),)), Case("matrix", (torch.ones(2, 3),))]


def test_reference_passes_and_stub_is_not_yet_implemented(capsys):
    assert run_cases(_ref, _ref, CASES, name="double").status == PASS

    def stub(x):
        raise NotImplementedError

    res = run_cases(stub, _ref, CASES, name="double")
    assert res.status == TODO and "NotImplementedError" in res.message
    assert "NOT YET IMPLEMENTED" in capsys.readouterr().out


def test_wrong_answers_are_explained():
    res = run_cases(lambda x: x * 2 + (x > 2).float(), _ref, CASES, name="double", quiet=True)
    assert res.status == FAIL and "case 'small'" in res.message and "position (3,)" in res.message
    assert "expected 6, got 7" in res.message
    res = run_cases(lambda x: (x * 2).mT if x.ndim == 2 else x * 2, _ref, CASES, name="double", quiet=True)
    assert "expected shape (2, 3), got shape (3, 2)" in res.message
    res = run_cases(lambda x: 1 / 0, _ref, CASES, name="double", quiet=True)
    assert res.status == FAIL and "ZeroDivisionError" in res.message
    res = run_cases(lambda x: x.tolist(), _ref, CASES, name="double", quiet=True)
    assert "expected a torch.Tensor" in res.message


def test_candidate_cannot_corrupt_reference_inputs():
    def inplace(x):
        x.mul_(100)
        return x / 50

    assert run_cases(inplace, _ref, CASES, name="double", quiet=True).passed


def test_explain_mismatch_tuples_nan_and_numbers():
    a = torch.zeros(2)
    assert explain_mismatch((a, a), (a, a)) is None
    assert "expected 2 items" in explain_mismatch((a, a), (a,))
    assert "NaN" in explain_mismatch(a, torch.tensor([0.0, float("nan")]))
    assert explain_mismatch(1.0, 1.0 + 1e-9) is None
    assert "expected 1" in explain_mismatch(1.0, 2.0)
    assert "values differ" in explain_mismatch(torch.tensor([1, 2]), torch.tensor([1, 3]))


def test_threshold_and_attempt(capsys):
    assert check_threshold(0.98, 0.97, name="acc").passed
    assert check_threshold(0.5, 0.97, name="acc").status == FAIL
    assert check_threshold(1.2, 1.5, name="loss", higher_is_better=False).passed
    assert check_threshold(None, 0.9, name="acc").status == TODO
    assert check_threshold("x", 0.9, name="acc").status == FAIL

    def stub():
        raise NotImplementedError

    assert attempt(stub) is None and "fill in `stub`" in capsys.readouterr().out
    assert attempt(lambda: 3) == 3


def test_strict_mode_raises_for_instructor_copies():
    checks.set_strict(True)
    try:
        with pytest.raises(AssertionError, match="strict"):
            check_threshold(0.1, 0.9, name="acc", quiet=True)
        assert check_threshold(0.95, 0.9, name="acc", quiet=True).passed
    finally:
        checks.set_strict(False)
    assert not check_threshold(0.1, 0.9, name="acc", quiet=True)  # lenient again


def test_run_cases_rejects_empty_cases_and_non_callables():
    with pytest.raises(ValueError, match="cases"):
        run_cases(_ref, _ref, [], name="x")
    assert run_cases(42, _ref, CASES, name="x", quiet=True).status == FAIL
