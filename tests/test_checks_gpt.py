"""Lab 6 (a tiny GPT): wrong filters, decoding loops and training steps with their verdicts."""

import pytest
import torch
import torch.nn.functional as F

from utils.checks import FAIL, PASS, TODO
from utils.checks import gpt as cg
from utils.sampling import generate


def _stub(*args, **kwargs):
    raise NotImplementedError


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None):
    z = logits / temperature
    if top_k is not None:
        kth = z.topk(top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p is not None:
        probs = z.softmax(dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, (sorted_p.cumsum(-1) - sorted_p) < top_p)
        z = z.masked_fill(~keep, float("-inf"))
    return z.softmax(dim=-1)


def _filter_probs_space(logits, temperature=1.0, top_k=None, top_p=None):
    """Filters on probabilities and renormalises by the sum: also right."""
    p = (logits / temperature).softmax(-1)
    if top_k is not None:
        p = torch.where(p >= p.topk(top_k, -1).values[..., -1:], p, torch.zeros_like(p))
        p = p / p.sum(-1, keepdim=True)
    if top_p is not None:
        s, order = p.sort(-1, descending=True)
        keep = (s.cumsum(-1) - s) < top_p
        p = torch.zeros_like(p).scatter(-1, order, s * keep)
        p = p / p.sum(-1, keepdim=True)
    return p


def _inplace_division(logits, temperature=1.0, top_k=None, top_p=None):
    logits /= temperature
    return filter_logits(logits, 1.0, top_k, top_p)


def _dim1(logits, temperature=1.0, top_k=None, top_p=None):
    z = logits / temperature
    if top_k is not None:
        z = z.masked_fill(z < z.topk(top_k, dim=1).values[:, -1:], float("-inf"))
    if top_p is not None:
        s, order = z.softmax(1).sort(dim=1, descending=True)
        keep = torch.zeros_like(s, dtype=torch.bool).scatter(1, order, (s.cumsum(1) - s) < top_p)
        z = z.masked_fill(~keep, float("-inf"))
    return z.softmax(dim=1)


FILTER_WRONG = [(why.split(":")[0][:50], fn, why) for fn, why in cg._MISTAKES] + [
    ("dim=1 instead of dim=-1", _dim1, "(V,)"),
    ("returns a list", lambda logits, **k: filter_logits(logits, **k).tolist(), "expected a torch.Tensor"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", FILTER_WRONG, ids=[c[0] for c in FILTER_WRONG])
def test_filter_logits_wrong_answers(label, fn, phrase):
    res = cg.check_filter_logits(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


def test_cumsum_at_most_top_p_is_named_not_reported_as_nan():
    res = cg.check_filter_logits(cg._variant(strict=True, keep_first=False), quiet=True)
    assert "drops the token that crosses" in res.message and "NaN" not in res.message.split(":")[0]


@pytest.mark.parametrize("fn", [filter_logits, _filter_probs_space, cg.filter_reference, _inplace_division])
def test_filter_logits_correct_alternatives(fn):
    assert cg.check_filter_logits(fn, quiet=True).status == PASS


def generate_text(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -block_size:])[:, -1, :]
            nxt = torch.multinomial(filter_logits(logits, temperature, top_k, top_p), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
    return idx


def _make(crop=lambda idx, bs: idx[:, -bs:], pos=-1, greedy=False, use_generator=True, pass_k=True, pass_p=True,
          pass_t=True, append=True, only_new=False, raw=False, softmax_again=False, own_generator=False):
    def gen(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
        prompt = idx
        g = torch.Generator().manual_seed(0) if own_generator else (generator if use_generator else None)
        for _ in range(max_new_tokens):
            logits = model(crop(idx, block_size))[:, pos, :]
            probs = logits if raw else filter_logits(logits, temperature if pass_t else 1.0,
                                                     top_k if pass_k else None, top_p if pass_p else None)
            if softmax_again:
                probs = probs.softmax(-1)
            nxt = probs.argmax(-1, keepdim=True) if greedy else torch.multinomial(probs, 1, generator=g)
            idx = torch.cat([idx, nxt], 1) if append else torch.cat([prompt, nxt], 1)
        return idx[:, prompt.shape[1]:] if only_new else idx
    return gen


def _float_ids(model, idx, n, block_size, **kw):
    return generate_text(model, idx, n, block_size, **kw).float()


GENERATE_WRONG = [
    ("context cropped to block_size - 1", _make(crop=lambda idx, bs: idx[:, -(bs - 1):]), "block_size - 1"),
    ("only the last token", _make(crop=lambda idx, bs: idx[:, -1:]), "only the last token"),
    ("cropped from the start", _make(crop=lambda idx, bs: idx[:, :bs]), "cropped from the start"),
    ("not cropped", _make(crop=lambda idx, bs: idx), "not cropped"),
    ("first position", _make(pos=0), "LAST position"),
    ("greedy argmax", _make(greedy=True), "argmax"),
    ("generator ignored", _make(use_generator=False), "generator is ignored"),
    ("own fixed generator", _make(own_generator=True), "generator passed in is ignored"),
    ("top_k ignored", _make(pass_k=False), "outside the top_k"),
    ("top_p ignored", _make(pass_p=False), "outside the top-p set"),
    ("temperature ignored", _make(pass_t=False), "temperature is ignored"),
    ("raw logits sampled", _make(raw=True), "not from the raw logits"),
    ("softmax taken twice", _make(softmax_again=True), "softmax is taken twice"),
    ("only the new tokens", _make(only_new=True), "prompt followed by the new tokens"),
    ("new tokens not appended", _make(append=False), "expected ids of shape"),
    ("float ids", _float_ids, "integer"),
    ("returns None", lambda *a, **k: None, "got None"),
    ("stub", _stub, None),
]


@pytest.mark.parametrize("label,fn,phrase", GENERATE_WRONG, ids=[c[0] for c in GENERATE_WRONG])
def test_generate_text_wrong_answers(label, fn, phrase):
    res = cg.check_generate_text(fn, quiet=True)
    if phrase is None:
        assert res.status == TODO
    else:
        assert res.status == FAIL and phrase in res.message, res.message


def _searchsorted(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Inverse-CDF sampling with the same generator: a valid sampler, different draws."""
    for _ in range(max_new_tokens):
        p = filter_logits(model(idx[:, -block_size:])[:, -1, :], temperature, top_k, top_p)
        u = torch.rand(p.shape[0], 1, generator=generator, dtype=p.dtype)
        nxt = torch.searchsorted(p.cumsum(-1), u).clamp(max=p.shape[-1] - 1)
        idx = torch.cat([idx, nxt], 1)
    return idx


def _library(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
    return generate(model, idx, max_new_tokens, block_size=block_size, temperature=temperature, top_k=top_k,
                    top_p=top_p, generator=generator)


def _row_by_row(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
    for _ in range(max_new_tokens):
        probs = filter_logits(model(idx[:, -block_size:])[:, -1, :], temperature, top_k, top_p)
        nxt = torch.stack([torch.multinomial(p, 1, generator=generator) for p in probs])
        idx = torch.cat([idx, nxt], dim=1)
    return idx


@pytest.mark.parametrize("fn", [generate_text, _searchsorted, _library, _row_by_row])
def test_generate_text_correct_alternatives(fn):
    res = cg.check_generate_text(fn, quiet=True)
    assert res.status == PASS, res.message


def test_generate_text_reports_a_wrong_filter():
    wrong_filter = cg._variant(p_first=True)

    def gen(model, idx, n, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
        for _ in range(n):
            probs = wrong_filter(model(idx[:, -block_size:])[:, -1, :], temperature, top_k, top_p)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], 1)
        return idx

    res = cg.check_generate_text(gen, quiet=True)
    assert res.status == FAIL and "filter_logits" in res.message


def train_step(model, optimizer, x, y):
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


def _lm_step(order, ret="item"):
    def fn(model, optimizer, x, y):
        _, loss = model(x, y)
        for op in order:
            if op == "clip":
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            else:
                {"zero": optimizer.zero_grad, "backward": loss.backward, "step": optimizer.step}[op]()
        return loss.item() if ret == "item" else None
    return fn


def _logits_loss(model, optimizer, x, y):
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


STEP_WRONG = [
    ("no zero_grad", _lm_step(["backward", "clip", "step"]), "gradients accumulate"),
    ("zero_grad between backward and step", _lm_step(["backward", "zero", "clip", "step"]), "between loss.backward()"),
    ("no clipping", _lm_step(["zero", "backward", "step"]), "not clipped"),
    ("clip after the step", _lm_step(["zero", "backward", "step", "clip"]), "too late"),
    ("no step", _lm_step(["zero", "backward", "clip"]), "never called"),
    ("returns nothing", _lm_step(["zero", "backward", "clip", "step"], ret="none"), "loss.item()"),
]


@pytest.mark.parametrize("label,fn,phrase", STEP_WRONG, ids=[c[0] for c in STEP_WRONG])
def test_train_step_wrong_answers(label, fn, phrase):
    res = cg.check_train_step(fn, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


def test_train_step_correct_alternatives():
    for fn in (train_step, _logits_loss):
        assert cg.check_train_step(fn, quiet=True).status == PASS
    assert cg.check_train_step(_stub, quiet=True).status == TODO


def test_generate_text_with_one_extra_model_call_passes():
    def lookahead(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
        logits = model(idx[:, -block_size:])
        for _ in range(max_new_tokens):
            probs = filter_logits(logits[:, -1, :], temperature, top_k, top_p)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
            logits = model(idx[:, -block_size:])
        return idx

    assert cg.check_generate_text(lookahead, quiet=True).status == PASS
