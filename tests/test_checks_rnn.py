"""Lab 3 (GRU from scratch): wrong cells, loops and training steps with their verdicts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.checks import FAIL, PASS, TODO
from utils.checks import rnn as cr
from utils.checks.rnn import _loop, _variant, check_gru_cell, check_gru_sequence, gru_reference_step
from utils.rnn import CellWeights, gru_cell, run_gru


def _stub(*args, **kwargs):
    raise NotImplementedError


def gru_step(x, h, W_ih, W_hh, b_ih, b_hh):
    i_r, i_z, i_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    candidate = torch.tanh(i_n + r * h_n)
    return (1 - z) * h + z * candidate, {"z": z, "r": r, "candidate": candidate}


def gru_step_split_weights(x, h, W_ih, W_hh, b_ih, b_hh):
    """Slices the weights per gate instead of chunking the products: also right."""
    H = h.shape[1]
    W = [W_ih[k * H:(k + 1) * H] for k in range(3)]
    U = [W_hh[k * H:(k + 1) * H] for k in range(3)]
    b, c = b_ih.view(3, H), b_hh.view(3, H)
    r = torch.sigmoid(F.linear(x, W[0], b[0]) + F.linear(h, U[0], c[0]))
    z = torch.sigmoid(F.linear(x, W[1], b[1]) + F.linear(h, U[1], c[1]))
    n = torch.tanh(F.linear(x, W[2], b[2]) + r * F.linear(h, U[2], c[2]))
    return h + z * (n - h), {"r": r, "z": z, "candidate": n}


def _inplace_h(x, h, *w):
    h_new, gates = gru_step(x, h, *w)
    h.copy_(h_new)
    return h, gates


def _detached_h(x, h, *w):
    return gru_step(x, h.detach(), *w)


CELL_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in cr._CELL_MISTAKES] + [
    ("gates dict z/r swapped", lambda *a: (lambda h, g: (h, {"z": g["r"], "r": g["z"], "candidate": g["candidate"]}))
     (*gru_step(*a)), "'z' and 'r' swapped"),
    ("h_new is the candidate", lambda *a: (gru_step(*a)[1]["candidate"], gru_step(*a)[1]), "h_new is the candidate"),
    ("no input bias", lambda x, h, W_ih, W_hh, b_ih, b_hh: gru_step(x, h, W_ih, W_hh, 0 * b_ih, b_hh),
     "the reset gate r differs"),
    ("gates missing", lambda *a: (gru_step(*a)[0], {"z": 1}), "lacks"),
    ("returns only h", lambda *a: gru_step(*a)[0], "return a pair (h_new, gates)"),
    ("modifies h in place", _inplace_h, "modified its input `h` in place"),
    ("detaches h", _detached_h, "no gradient reaches `h`"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", CELL_WRONG, ids=[c[0][:40] for c in CELL_WRONG])
def test_gru_cell_wrong_answers(label, fn, phrase):
    res = check_gru_cell(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [gru_step, gru_step_split_weights, gru_reference_step, _variant])
def test_gru_cell_correct_alternatives(fn):
    res = check_gru_cell(fn, quiet=True)
    assert res.status == PASS and "gradients" in res.message, res.message


def gru_sequence(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    h = X.new_zeros(X.shape[0], W_hh.shape[1]) if h0 is None else h0
    outputs = []
    for t in range(X.shape[1]):
        h, _ = gru_step(X[:, t], h, W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def gru_sequence_preallocated(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    """Writes into a preallocated tensor: also right, and autograd follows the slices."""
    B, T, _ = X.shape
    out = X.new_zeros(B, T, W_hh.shape[1])
    h = torch.zeros_like(out[:, 0]) if h0 is None else h0
    for t in range(T):
        h, _ = gru_step(X[:, t], h, W_ih, W_hh, b_ih, b_hh)
        out[:, t] = h
    return out, out[:, -1]


def _detach_each_step(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    h = X.new_zeros(X.shape[0], W_hh.shape[1]) if h0 is None else h0
    outputs = []
    for t in range(X.shape[1]):
        h, _ = gru_step(X[:, t], h.detach(), W_ih, W_hh, b_ih, b_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def _time_major(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    out, last = gru_sequence(X, W_ih, W_hh, b_ih, b_hh, h0)
    return out.transpose(0, 1), last


def _h0_updated_in_place(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    out, last = gru_sequence(X, W_ih, W_hh, b_ih, b_hh, h0)
    if h0 is not None:
        h0.copy_(last)
    return out, last


def _wrong_state_at_3(X, W_ih, W_hh, b_ih, b_hh, h0=None):
    out, last = gru_sequence(X, W_ih, W_hh, b_ih, b_hh, h0)
    out = out.clone()
    out[:, 3:] += 0.5
    return out, out[:, -1]


SEQ_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in cr._SEQ_MISTAKES] + [
    ("state detached at each step", _detach_each_step, "the state is detached between steps"),
    ("outputs (T, B, H)", _time_major, "(B, T, H)"),
    ("h_T is the first state", lambda *a, **k: (gru_sequence(*a, **k)[0], gru_sequence(*a, **k)[0][:, 0]),
     "h_T is not"),
    ("h0 modified in place", _h0_updated_in_place, "modified its input `h0` in place"),
    ("a later step wrong", _wrong_state_at_3, "first wrong state is at time step t=3"),
    ("returns a list of states", lambda *a, **k: list(gru_sequence(*a, **k)[0].unbind(1)), "return a pair"),
]


@pytest.mark.parametrize("label,fn,phrase", SEQ_WRONG, ids=[c[0][:40] for c in SEQ_WRONG])
def test_gru_sequence_wrong_answers(label, fn, phrase):
    res = check_gru_sequence(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("fn", [gru_sequence, gru_sequence_preallocated, lambda *a: run_gru(a[0], CellWeights(*a[1:5]), *a[5:])])
def test_gru_sequence_correct_alternatives(fn):
    res = check_gru_sequence(fn, quiet=True)
    assert res.status == PASS and "through time" in res.message, res.message


def test_shifted_outputs_are_not_reported_as_a_wrong_state_at_t0():
    res = check_gru_sequence(lambda *a: _loop(*a, shift=True), quiet=True)
    assert "t=0" not in res.message and "shifted by one step" in res.message


# ------------------------------------------------------------------------------ the training step
def train_step(model, optimizer, X_batch, y_batch):
    loss = F.mse_loss(model(X_batch), y_batch)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def _step(order, loss_fn=F.mse_loss, ret="item"):
    def fn(model, optimizer, X, y):
        loss = loss_fn(model(X), y)
        for op in order:
            if op == "zero":
                optimizer.zero_grad()
            elif op == "backward":
                loss.backward()
            elif op == "clip":
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            elif op == "step":
                optimizer.step()
        return {"item": loss.item(), "tensor": loss, "none": None}[ret]
    return fn


STEP_WRONG = [
    ("no zero_grad", _step(["backward", "clip", "step"]), "gradients accumulate"),
    ("zero_grad between backward and step", _step(["backward", "zero", "clip", "step"]),
     "between loss.backward() and optimizer.step()"),
    ("no clipping", _step(["zero", "backward", "step"]), "not clipped"),
    ("clip before backward", _step(["zero", "clip", "backward", "step"]), "before loss.backward(), when there is nothing"),
    ("clip after step", _step(["zero", "backward", "step", "clip"]), "too late"),
    ("no step", _step(["zero", "backward", "clip"]), "never called"),
    ("step before backward", _step(["zero", "step", "backward"]), "runs before loss.backward()"),
    ("no backward", _step(["zero", "step"]), "loss.backward() is never called"),
    ("L1 loss", _step(["zero", "backward", "clip", "step"], loss_fn=F.l1_loss), "losses[0]"),
    ("returns nothing", _step(["zero", "backward", "clip", "step"], ret="none"), "loss.item()"),
    ("detached prediction", lambda m, o, X, y: _step(["zero", "backward", "step"])(lambda X_: m(X_).detach(), o, X, y),
     "cut off from the graph"),
]


@pytest.mark.parametrize("label,fn,phrase", STEP_WRONG, ids=[c[0] for c in STEP_WRONG])
def test_train_step_wrong_answers(label, fn, phrase):
    res = cr.check_train_step(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_train_step_correct_alternatives():
    from torch.nn.utils import clip_grad_norm_

    def imported_clip(model, optimizer, X, y):
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(X), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        return float(loss.detach())

    def model_zero_grad(model, optimizer, X, y):
        model.zero_grad()
        loss = ((model(X) - y) ** 2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.detach()

    for fn in (train_step, imported_clip, model_zero_grad):
        assert cr.check_train_step(fn, quiet=True).status == PASS
    assert cr.check_train_step(_stub, quiet=True).status == TODO


def test_checkers_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    cr.check_train_step(train_step, quiet=True)
    check_gru_sequence(gru_sequence, quiet=True)
    assert torch.equal(before, torch.random.get_rng_state())


def test_reference_gru_step_matches_gru_cell():
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(2, 3, generator=g), torch.randn(2, 4, generator=g), torch.randn(12, 3, generator=g),
            torch.randn(12, 4, generator=g), torch.randn(12, generator=g), torch.randn(12, generator=g))
    torch.testing.assert_close(gru_reference_step(*args)[0], gru_cell(args[0], args[1], CellWeights(*args[2:])))


def test_train_step_value_clipping_is_named():
    def value_clip(model, optimizer, X, y):
        loss = F.mse_loss(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    res = cr.check_train_step(value_clip, quiet=True)
    assert res.status == FAIL and "clip_grad_value_" in res.message and "NORM" in res.message
