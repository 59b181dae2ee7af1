"""The checkers of the lab "LoRA and the KV cache from scratch": the references pass, stubs are NOT YET
IMPLEMENTED, and a table of wrong implementations each gets FAIL with its mistake named (never an exception)."""

import math

import pytest
import torch

from utils.checks import FAIL, PASS, TODO
from utils.checks import llm as C
from utils.llama import KVCache
from utils.positional import apply_rope


def _stub(*args, **kwargs):
    raise NotImplementedError


def _init_good(d_in, d_out, r, generator):
    bound = 1 / math.sqrt(d_in)
    return torch.rand(r, d_in, generator=generator) * 2 * bound - bound, torch.zeros(d_out, r)


def _merge_transposed(model, adapters, alpha):
    with torch.no_grad():
        for n, (A, B) in adapters.items():
            model.get_submodule(n).weight += (B @ A).T * (alpha / A.shape[0])
    return model


def _merge_wrong_target(model, adapters, alpha):  # "q_proj" adapters merged into k_proj
    with torch.no_grad():
        for n, (A, B) in adapters.items():
            model.get_submodule(n.replace("q_proj", "k_proj")).weight += B @ A * (alpha / A.shape[0])
    return model


def _merge_unscaled(model, adapters, alpha):
    with torch.no_grad():
        for n, (A, B) in adapters.items():
            model.get_submodule(n).weight += B @ A
    return model


def _merge_copy_only(model, adapters, alpha):  # computes the merged weights but never writes them
    for n, (A, B) in adapters.items():
        _ = model.get_submodule(n).weight + B @ A * (alpha / A.shape[0])
    return model


def _merge_wraps(model, adapters, alpha):
    for n in adapters:
        parent, _, child = n.rpartition(".")
        setattr(model.get_submodule(parent), child, torch.nn.Sequential(getattr(model.get_submodule(parent), child)))
    return model


def _rope_half_manual(x, cos, sin, start, sign=1.0):
    T, h = x.shape[-2], x.shape[-1] // 2
    c, s = cos[start:start + T], sin[start:start + T] * sign
    return torch.cat([x[..., :h] * c - x[..., h:] * s, x[..., :h] * s + x[..., h:] * c], dim=-1)


def _gen_no_cache(model, idx, n):
    with torch.no_grad():
        for _ in range(n):
            idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def _gen_feeds_everything(model, idx, n):
    cache = KVCache(model.config.n_layer)
    with torch.no_grad():
        for _ in range(n):
            idx = torch.cat([idx, model(idx, cache=cache)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def _gen_only_new(model, idx, n):
    return C.generate_with_cache_reference(model, idx, n)[:, idx.shape[1]:]


CASES = [
    # (checker, wrong implementation, phrase the verdict must contain)
    (C.check_lora_forward, lambda x, W, A, B, a: x @ W.T + x @ A.T @ B.T, "no alpha / r scaling"),
    (C.check_lora_forward, lambda x, W, A, B, a: x @ W.T + x @ A.T @ B.T * a, "scaled by alpha, not alpha / r"),
    (C.check_lora_forward, lambda x, W, A, B, a: x @ W.T + x @ A.T @ B.T * (A.shape[0] / a), "upside down"),
    (C.check_lora_forward, lambda x, W, A, B, a: x @ A.T @ B.T * (a / A.shape[0]), "frozen weight's output"),
    (C.check_lora_forward, lambda x, W, A, B, a: x @ W.T + x @ B @ A * a, "your code raised RuntimeError"),
    (C.check_lora_forward, lambda x, W, A, B, a: None, "got None (is a `return` missing?)"),
    (C.check_init_lora, lambda i, o, r, g: (torch.randn(r, i, generator=g) * 0.01, torch.randn(o, r, generator=g)),
     "B is not zero, so the model changes at step 0"),
    (C.check_init_lora, lambda i, o, r, g: (torch.zeros(r, i), torch.zeros(o, r)), "A is zero too"),
    (C.check_init_lora, lambda i, o, r, g: (torch.zeros(o, r), torch.rand(r, i)), "A and B are swapped"),
    (C.check_init_lora, lambda i, o, r, g: (torch.randn(r, i, generator=g) * 10, torch.zeros(o, r)), "too large"),
    (C.check_init_lora, lambda i, o, r, g: torch.zeros(3), "return a pair of tensors"),
    (C.check_merge_lora, _merge_transposed, "transposed"),
    (C.check_merge_lora, _merge_wrong_target, "merged into the wrong weight"),
    (C.check_merge_lora, _merge_unscaled, "without the alpha / r scaling"),
    (C.check_merge_lora, _merge_copy_only, "was not changed"),
    (C.check_merge_lora, _merge_wraps, "changed names"),
    (C.check_merge_lora, lambda m, a, al: m.get_submodule("nope"), "your code raised AttributeError"),
    (C.check_append_kv, lambda c, k, v: (k, v) if c is None else (torch.cat([c[0], k], 1), torch.cat([c[1], v], 1)),
     "heads axis (1)"),
    (C.check_append_kv, lambda c, k, v: (k, v) if c is None else (torch.cat([c[0], k], 0), torch.cat([c[1], v], 0)),
     "batch axis (0)"),
    (C.check_append_kv, lambda c, k, v: (k, v) if c is None else (torch.cat([k, c[0]], 2), torch.cat([v, c[1]], 2)),
     "went before the cached ones"),
    (C.check_append_kv, lambda c, k, v: (k, v) if c is None else (torch.cat([c[0], k], 2), torch.cat([c[0], v], 2)),
     "values are not"),
    (C.check_append_kv, lambda c, k, v: (k, v), "cached keys were dropped"),
    (C.check_append_kv, lambda c, k, v: (torch.cat([c[0], k], 2), torch.cat([c[1], v], 2)), "cache=None"),
    (C.check_append_kv, lambda c, k, v: (k, v) if c is None else (torch.cat([c[0], k], 3), torch.cat([c[1], v], 3)),
     "head-size axis (3)"),
    (C.check_rope_new_tokens, lambda x, c, s, p: _rope_half_manual(x, c, s, 0), "position offset is wrong"),
    (C.check_rope_new_tokens, lambda x, c, s, p: _rope_half_manual(x, c, s, p + 1), "off by one"),
    (C.check_rope_new_tokens, lambda x, c, s, p: apply_rope(x, c, s, offset=p), "(2i, 2i+1)"),
    (C.check_rope_new_tokens, lambda x, c, s, p: _rope_half_manual(x, c, s, p, -1.0), "wrong way"),
    (C.check_rope_new_tokens, lambda x, c, s, p: x.view(-1), "expected shape"),
    (C.check_generate_with_cache, _gen_no_cache, "no cache was passed"),
    (C.check_generate_with_cache, _gen_feeds_everything, "feed only the newest token"),
    (C.check_generate_with_cache, _gen_only_new, "prompt followed by the new tokens"),
    (C.check_generate_with_cache, lambda m, i, n: m.generate(i, n), "your code raised AttributeError"),
]


@pytest.mark.parametrize("checker,wrong,phrase", CASES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_each_mistake_is_named(checker, wrong, phrase):
    res = checker(wrong, quiet=True)
    assert res.status == FAIL and phrase in res.message, res.message


@pytest.mark.parametrize("checker,good", [
    (C.check_lora_forward, C.lora_forward_reference), (C.check_init_lora, _init_good),
    (C.check_merge_lora, C.merge_lora_reference), (C.check_append_kv, C.append_kv_reference),
    (C.check_rope_new_tokens, C.rope_new_tokens_reference), (C.check_rope_new_tokens, _rope_half_manual),
    (C.check_generate_with_cache, C.generate_with_cache_reference)])
def test_references_pass_stubs_are_todo_and_non_functions_fail(checker, good):
    assert checker(good, quiet=True).status == PASS
    assert checker(_stub, quiet=True).status == TODO
    assert checker(42, quiet=True).status == FAIL


def test_the_merge_reference_matches_utils_lora():
    from utils.lora import LoRALinear

    model, adapters, alpha = C._merge_case()
    lin = model.get_submodule("layers.0.self_attn.q_proj")
    lora = LoRALinear(torch.nn.Linear(6, 6, bias=False).to(torch.float64), r=2, alpha=alpha)
    with torch.no_grad():
        lora.base_layer.weight.copy_(lin.weight)
        lora.lora_A.copy_(adapters["layers.0.self_attn.q_proj"][0])
        lora.lora_B.copy_(adapters["layers.0.self_attn.q_proj"][1])
    lora.merge()
    C.merge_lora_reference(model, adapters, alpha)
    torch.testing.assert_close(lora.base_layer.weight, lin.weight)
