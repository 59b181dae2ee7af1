import torch

from utils.checks import FAIL, PASS, TODO
from utils.checks.gpt import (_not_renormalised, _times_temperature, _top_p_before_temperature, _top_p_strict,
                              check_filter_logits, check_generate_text, filter_reference)
from utils.sampling import generate


def test_filter_reference_passes_and_stub_is_todo():
    assert check_filter_logits(filter_reference, quiet=True).status == PASS

    def stub(*a, **k):
        raise NotImplementedError

    assert check_filter_logits(stub, quiet=True).status == TODO


def test_filter_mistakes_are_named():
    for wrong, phrase in ((_times_temperature, "multiplied by the temperature"),
                          (_not_renormalised, "do not sum to 1"),
                          (_top_p_strict, "drops the token that crosses"),
                          (_top_p_before_temperature, "before the temperature")):
        res = check_filter_logits(wrong, quiet=True)
        assert res.status == FAIL and phrase in res.message, (wrong.__name__, res.message)


def _good(model, idx, max_new_tokens, block_size, temperature=1.0, top_k=None, top_p=None, generator=None):
    return generate(model, idx, max_new_tokens, block_size=block_size, temperature=temperature, top_k=top_k,
                    top_p=top_p, generator=generator)


def test_generate_checker():
    assert check_generate_text(_good, quiet=True).status == PASS

    def no_crop(model, idx, n, block_size, **kw):
        return _good(model, idx, n, 10_000, **kw)

    res = check_generate_text(no_crop, quiet=True)
    assert res.status == FAIL and "not cropped" in res.message

    def only_new(model, idx, n, block_size, **kw):
        return _good(model, idx, n, block_size, **kw)[:, idx.shape[1]:]

    res = check_generate_text(only_new, quiet=True)
    assert res.status == FAIL and "prompt followed by the new tokens" in res.message

    def first_position(model, idx, n, block_size, **kw):
        for _ in range(n):
            logits = model(idx[:, -block_size:])[:, 0, :]
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
        return idx

    res = check_generate_text(first_position, quiet=True)
    assert res.status == FAIL and "LAST position" in res.message
