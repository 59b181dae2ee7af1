import torch

from utils.checks import FAIL, PASS, TODO
from utils.checks.rnn import _variant, check_gru_cell, check_gru_sequence, gru_reference_step
from utils.rnn import CellWeights, gru_cell, run_gru


def test_reference_cell_passes_and_a_stub_is_not_yet_implemented():
    assert check_gru_cell(gru_reference_step, quiet=True).status == PASS

    def stub(*args):
        raise NotImplementedError

    assert check_gru_cell(stub, quiet=True).status == TODO


def test_cell_mistakes_are_named():
    swapped = check_gru_cell(lambda *a: _variant(*a, swap_z=True), quiet=True)
    assert swapped.status == FAIL and "roles of z are swapped" in swapped.message
    order = check_gru_cell(lambda *a: _variant(*a, order="zrn"), quiet=True)
    assert order.status == FAIL and "stacked [r, z, n]" in order.message
    reset = check_gru_cell(lambda *a: _variant(*a, reset_before=True), quiet=True)
    assert reset.status == FAIL and "reset gate must multiply" in reset.message


def test_cell_unknown_bug_names_the_gate():
    def no_bias(x, h, W_ih, W_hh, b_ih, b_hh):
        h_new, g = gru_reference_step(x, h, W_ih, W_hh, 0 * b_ih, b_hh)
        return h_new, g

    res = check_gru_cell(no_bias, quiet=True)
    assert res.status == FAIL and "the reset gate r differs" in res.message
    res = check_gru_cell(lambda *a: (gru_reference_step(*a)[0], {"z": 1}), quiet=True)
    assert res.status == FAIL and "lacks" in res.message


def _good_sequence(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    return run_gru(X, CellWeights(W_ih, W_hh, b_ih, b_hh), h0)


def test_sequence_checker_passes_reference_and_locates_bugs():
    assert check_gru_sequence(_good_sequence, quiet=True).status == PASS

    def no_carry(X, W_ih, W_hh, b_ih, b_hh, h0=None):
        w = CellWeights(W_ih, W_hh, b_ih, b_hh)
        h = X.new_zeros(X.shape[0], W_hh.shape[1]) if h0 is None else h0
        outs = [gru_cell(X[:, t], h, w) for t in range(X.shape[1])]  # h never updated
        return torch.stack(outs, 1), outs[-1]

    res = check_gru_sequence(no_carry, quiet=True)
    assert res.status == FAIL and "t=1" in res.message and "not carried" in res.message

    res = check_gru_sequence(lambda X, *w, h0=None: _good_sequence(X, *w[:4]), quiet=True)
    assert res.status == FAIL and "h0 is ignored" in res.message

    res = check_gru_sequence(lambda *a: (_good_sequence(*a)[0].transpose(0, 1), _good_sequence(*a)[1]), quiet=True)
    assert res.status == FAIL and "(B, T, H)" in res.message
