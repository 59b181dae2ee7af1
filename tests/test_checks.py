"""The checker toolkit (utils.checks): verdicts, explanations, learner calls, strict mode."""

import numpy as np
import pytest
import torch

from utils import checks
from utils.checks import (FAIL, PASS, TODO, Case, CheckResult, StrictCheckFailure, attempt, call_learner,
                          check_threshold, describe, exception_hint, explain_gradients, explain_mismatch, guarded,
                          run_cases, try_mistakes)


def _ref(x):
    return x * 2


CASES = [Case("small", (torch.arange(4.0),)), Case("matrix", (torch.ones(2, 3),))]


def _stub(*args, **kwargs):
    raise NotImplementedError("Exercise: write your code here")


def test_reference_passes_and_stub_is_not_yet_implemented(capsys):
    assert run_cases(_ref, _ref, CASES, name="double").status == PASS
    res = run_cases(_stub, _ref, CASES, name="double")
    assert res.status == TODO and "NotImplementedError" in res.message
    assert "NOT YET IMPLEMENTED" in capsys.readouterr().out


def test_the_message_format_the_book_shows():
    """chapters/01_background/02_how_to_use_this_book prints this verdict in a checked cell."""
    cases = [Case("a vector", (torch.arange(4.0),)), Case("a matrix", (torch.ones(2, 3),))]
    res = run_cases(lambda x: x + 2, lambda x: 2 * x, cases, name="double", quiet=True)
    assert str(res) == "❌ FAIL [double] on case 'a vector': output: 3 of 4 values differ; first at position (0,): " \
                       "expected 0, got 2"


def test_wrong_answers_are_explained():
    res = run_cases(lambda x: x * 2 + (x > 2).float(), _ref, CASES, name="double", quiet=True)
    assert res.status == FAIL and "case 'small'" in res.message and "position (3,)" in res.message
    assert "expected 6, got 7" in res.message
    res = run_cases(lambda x: (x * 2).mT if x.ndim == 2 else x * 2, _ref, CASES, name="double", quiet=True)
    assert "expected shape (2, 3), got shape (3, 2)" in res.message and "transposed" in res.message
    res = run_cases(lambda x: 1 / 0, _ref, CASES, name="double", quiet=True)
    assert res.status == FAIL and "ZeroDivisionError" in res.message
    res = run_cases(lambda x: x.tolist(), _ref, CASES, name="double", quiet=True)
    assert "expected a torch.Tensor" in res.message and "list of 4 items" in res.message


def test_known_mistakes_name_the_bug_and_gradients_are_compared():
    mistakes = [(lambda x: x * 3, "multiplied by 3, not 2")]
    res = run_cases(lambda x: x * 3, _ref, CASES, name="double", quiet=True, mistakes=mistakes)
    assert res.status == FAIL and res.message.endswith("multiplied by 3, not 2")
    res = run_cases(lambda x: (x * 2).detach(), _ref, CASES, name="double", quiet=True, gradients=(0,),
                    arg_names=("x",))
    assert res.status == FAIL and "no gradient flows back" in res.message
    res = run_cases(lambda x: x * 2 + 0 * x.detach(), _ref, CASES, name="double", quiet=True, gradients=(0,))
    assert res.status == PASS and "gradients" in res.message
    res = run_cases(lambda x: x.detach() + x, _ref, CASES, name="double", quiet=True, gradients=(0,), arg_names=("x",))
    assert res.status == FAIL and "the gradient with respect to `x`" in res.message


def test_inputs_are_copied_and_in_place_edits_can_be_forbidden():
    def inplace(x):
        x.mul_(100)
        return x / 50

    assert run_cases(inplace, _ref, CASES, name="double", quiet=True).passed  # the copy protects the reference
    res = run_cases(inplace, _ref, CASES, name="double", quiet=True, arg_names=("x",), frozen=("x",))
    assert res.status == FAIL and "modified its input `x` in place" in res.message


def test_explain_mismatch_never_raises_and_names_what_it_sees():
    a = torch.zeros(2)
    assert explain_mismatch((a, a), (a, a)) is None
    assert "expected 2 items" in explain_mismatch((a, a), (a,))
    assert "NaN" in explain_mismatch(a, torch.tensor([0.0, float("nan")]))
    assert explain_mismatch(1.0, 1.0 + 1e-9) is None
    assert "expected 1" in explain_mismatch(1.0, 2.0)
    assert "values differ" in explain_mismatch(torch.tensor([1, 2]), torch.tensor([1, 3]))
    assert "NumPy array" in explain_mismatch(torch.arange(3), np.arange(3)[::-1])  # negative strides
    assert explain_mismatch(np.arange(3.0), np.arange(3.0)[::-1].copy()[::-1]) is None
    assert "meta" in explain_mismatch(a, torch.empty(2, device="meta"))
    assert "integer values" in explain_mismatch(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert explain_mismatch(torch.zeros(2, 2), torch.zeros(2, 2).to_sparse()) is None
    assert "one number" in explain_mismatch(1.0, torch.ones(3))
    assert explain_mismatch(1.0, torch.tensor(1.0)) is None
    assert "expected a number, got None" in explain_mismatch(1.0, None)
    assert "keys ['b'] are missing" in explain_mismatch({"a": a, "b": a}, {"a": a})
    assert "is a `return` missing" in explain_mismatch(a, None)
    assert "could not be compared" not in explain_mismatch(torch.zeros(2), np.array([object(), object()]))
    assert explain_mismatch("abc", np.arange(3)) is not None  # an ambiguous == is a mismatch, not a crash


def test_rounding_differences_name_the_dtype_and_show_enough_digits():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(50, generator=g, dtype=torch.float64)
    msg = explain_mismatch(e, e.float(), atol=1e-12, rtol=1e-12)
    assert "torch.float32" in msg and "rounding" in msg
    shown = msg.split("expected ")[1]
    assert shown.split(", got ")[0] != shown.split(", got ")[1].split(" ")[0]  # the two numbers print differently
    msg = explain_mismatch(e, e.float().double(), atol=1e-12, rtol=1e-12)
    assert "float32" in msg and "x.new_zeros" in msg
    assert "rounding" not in explain_mismatch(e, e + 1.0)


def test_describe():
    assert describe(None) == "None"
    assert describe(np.zeros((2, 3), dtype=np.int8)) == "a NumPy array of shape (2, 3) and dtype int8"
    assert describe(torch.zeros(3)) == "a tensor of shape (3,) and dtype torch.float32"
    assert "meta" in describe(torch.zeros(3, device="meta"))
    assert describe([1, 2]) == "a list of 2 items"
    assert "not its result" in describe(len)


def test_call_learner_reports_stubs_exceptions_and_hints():
    value, verdict = call_learner("f", lambda x: x + 1, [1])
    assert value == 2 and verdict is None
    _, verdict = call_learner("f", _stub, [])
    assert verdict.status == TODO

    def torch_not_implemented():
        raise NotImplementedError("'addmm' not implemented for 'Half'")

    _, verdict = call_learner("f", torch_not_implemented, [])
    assert verdict.status == FAIL and "not implemented for 'Half'" in verdict.message

    def exits():
        raise SystemExit(3)

    assert call_learner("f", exits, [])[1].status == FAIL

    class BadStr(Exception):
        def __str__(self):
            raise RuntimeError("no")

    def raises_bad():
        raise BadStr()

    assert "BadStr" in call_learner("f", raises_bad, [])[1].message

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_learner("f", interrupted, [])
    _, verdict = call_learner("f", 42, [])
    assert verdict.status == FAIL and "expected a function" in verdict.message


@pytest.mark.parametrize("error,phrase", [
    (RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn"), "cut off from the graph"),
    (RuntimeError("view size is not compatible with input tensor's size and stride"), ".reshape"),
    (RuntimeError("a leaf Variable that requires grad is being used in an in-place operation."), "in place"),
    (RuntimeError("probability tensor contains either `inf`, `nan` or element < 0"), "raw logits"),
    (AttributeError("'NoneType' object has no attribute 'view'"), "bias=None"),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"), "transpose"),
    (TypeError("f() missing 1 required positional argument: 'bias'"), "default values"),
    (AttributeError("'float' object has no attribute 'backward'"), ".item() only"),
    (ValueError("something unheard of"), ""),
])
def test_exception_hints(error, phrase):
    hint = exception_hint(error)
    assert (phrase in hint) if phrase else hint == ""


def test_guarded_checkers_never_raise_and_keep_the_global_state():
    @guarded("demo")
    def broken_checker(fn, *, quiet=False):
        raise IndexError("a checker bug")

    res = broken_checker(None, quiet=True)
    assert res.status == FAIL and "checker itself" in res.message

    @guarded("demo")
    def seeding_checker(fn, *, quiet=False):
        torch.manual_seed(0)
        torch.set_grad_enabled(False)
        return CheckResult("demo", PASS, "ok")

    torch.manual_seed(42)
    state = torch.random.get_rng_state()
    assert seeding_checker(None).passed
    assert torch.equal(state, torch.random.get_rng_state()) and torch.is_grad_enabled()


def test_threshold_and_attempt(capsys):
    assert check_threshold(0.98, 0.97, name="acc").passed
    assert check_threshold(0.5, 0.97, name="acc").status == FAIL
    assert check_threshold(1.2, 1.5, name="loss", higher_is_better=False).passed
    assert check_threshold(None, 0.9, name="acc").status == TODO
    assert check_threshold("x", 0.9, name="acc").status == FAIL
    assert check_threshold(torch.tensor(0.99), 0.9, name="acc").passed
    for garbage in (torch.ones(3), [0.9], True, float("nan"), torch.empty(1, device="meta"), np.array([[0.99]])):
        res = check_threshold(garbage, 0.9, name="acc", quiet=True)
        assert res.status in (FAIL, PASS) and "checker itself" not in res.message
    with pytest.raises(TypeError, match="threshold"):
        check_threshold(0.5, "0.9", name="acc")

    assert attempt(_stub) is None and "fill in `_stub`" in capsys.readouterr().out
    assert attempt(lambda: 3) == 3
    with pytest.raises(TypeError, match="fn"):
        attempt(3)


def test_strict_mode_raises_for_instructor_copies():
    checks.set_strict(True)
    try:
        with pytest.raises(AssertionError, match="strict"):
            check_threshold(0.1, 0.9, name="acc", quiet=True)
        with pytest.raises(StrictCheckFailure):
            run_cases(lambda x: 1 / 0, _ref, CASES, name="double", quiet=True)
        assert check_threshold(0.95, 0.9, name="acc", quiet=True).passed
        with checks.lenient():
            assert not check_threshold(0.1, 0.9, name="acc", quiet=True)
    finally:
        checks.set_strict(False)
    assert not check_threshold(0.1, 0.9, name="acc", quiet=True)  # lenient again
    with pytest.raises(TypeError, match="strict"):
        checks.set_strict("no")
    assert not checks.is_strict()


def test_run_cases_rejects_bad_setup_but_not_bad_candidates():
    with pytest.raises(ValueError, match="cases"):
        run_cases(_ref, _ref, [], name="x")
    with pytest.raises(TypeError, match="cases"):
        run_cases(_ref, _ref, ["not a case"], name="x")
    with pytest.raises(TypeError, match="name"):
        run_cases(_ref, _ref, CASES, name=3)
    with pytest.raises(TypeError, match="reference"):
        run_cases(_ref, None, CASES, name="x")
    with pytest.raises(TypeError, match="description"):
        Case(3)
    assert run_cases(42, _ref, CASES, name="x", quiet=True).status == FAIL


def test_try_mistakes_skips_variants_that_raise():
    mistakes = [(lambda x: 1 / 0, "never"), (lambda x: x + 1, "plus one")]
    assert try_mistakes(mistakes, (torch.zeros(2),), torch.ones(2)) == "plus one"
    assert try_mistakes(mistakes, (torch.zeros(2),), torch.full((2,), 5.0)) is None


def test_explain_gradients_reports_which_input_is_cut():
    args = (torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64))
    ref = lambda a, b: a * b  # noqa: E731
    assert explain_gradients(ref, ref, args, wrt=(0, 1), arg_names=("a", "b")).message is None
    report = explain_gradients(lambda a, b: a * b.detach(), ref, args, wrt=(0, 1), arg_names=("a", "b"))
    assert "no gradient reaches `b`" in report.message and report.grads["b"] is None
