"""utils.llama against transformers' LlamaForCausalLM: tiny random configs in float64 (seconds), plus
one test on the real SmolLM2-135M-Instruct weights (the packaged model, loaded from the cache)."""

import pytest
import torch
from transformers import LlamaConfig as HFLlamaConfig
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb

from utils.gpt import GPT, GPTConfig
from utils.llama import (KVCache, Llama, LlamaConfig, RMSNorm, SwiGLU, from_hf, kv_cache_bytes,
                         parameter_breakdown)
from utils.positional import apply_rope, rope_angles

DT = torch.float64
TOL = dict(rtol=1e-5, atol=1e-6)  # transformers' LlamaRMSNorm rounds even float64 inputs to float32


def _hf(n_kv_head=2, tie=True, seed=0):
    torch.manual_seed(seed)
    cfg = HFLlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=n_kv_head, max_position_embeddings=64,
                        rope_theta=500.0, rms_norm_eps=1e-5, tie_word_embeddings=tie, pad_token_id=None,
                        bos_token_id=1, eos_token_id=2)
    hf = LlamaForCausalLM(cfg).to(DT).eval()  # pad_token_id=None: no padding_idx row without gradient
    hf.generation_config.pad_token_id = 0
    with torch.no_grad():  # non-trivial norm weights, so that a swapped or missing norm is caught
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return hf


@pytest.mark.parametrize("n_kv_head,tie", [(2, True), (4, False), (1, True)])
def test_same_logits_and_gradients_as_transformers(n_kv_head, tie):
    hf = _hf(n_kv_head, tie)
    ours = from_hf(hf)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
    idx = torch.randint(0, 64, (3, 20), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(idx), hf(idx).logits, **TOL)
    torch.nn.functional.cross_entropy(ours(idx)[:, :-1].reshape(-1, 64), idx[:, 1:].reshape(-1)).backward()
    hf(input_ids=idx, labels=idx).loss.backward()
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, hf.get_parameter(("" if name.startswith("lm_head") else "model.") + name).grad,
                                   **TOL)


def test_kv_cache_decoding_equals_the_full_forward_pass():
    hf = _hf()
    ours = from_hf(hf)
    idx = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(2))
    full = ours(idx)
    cache = KVCache(ours.config.n_layer)
    pieces = [ours(idx[:, :5], cache=cache)]  # prefill 5 tokens
    for t in range(5, 9):  # then one token at a time
        pieces.append(ours(idx[:, t:t + 1], cache=cache))
    pieces.append(ours(idx[:, 9:], cache=cache))  # then a chunk of 3 after cached tokens (needs the offset mask)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full)
    assert len(cache) == 12 and cache.keys[1].shape == (2, 2, 12, 8)
    assert cache.nbytes() == kv_cache_bytes(ours.config, 12, batch=2, bytes_per_value=8)
    assert kv_cache_bytes(LlamaConfig(), 1) == 46080  # SmolLM2: 2 x 30 x 3 x 64 x 4 bytes per token


def test_greedy_generation_with_and_without_cache_equals_transformers():
    hf = _hf()
    ours = from_hf(hf)
    prompt = torch.randint(3, 64, (1, 6), generator=torch.Generator().manual_seed(3))
    a = ours.generate(prompt, 10, greedy=True)
    b = ours.generate(prompt, 10, greedy=True, use_cache=False)
    c = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10, min_new_tokens=10,
                    do_sample=False)
    assert torch.equal(a, b) and torch.equal(a, c)
    g = ours.generate(prompt, 10, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert g.shape == (1, 16) and torch.equal(g[:, :6], prompt)


def test_sampling_with_global_seed_matches_transformers_generate():
    hf = _hf()
    ours = from_hf(hf)
    prompt = torch.randint(3, 64, (1, 4), generator=torch.Generator().manual_seed(4))
    torch.manual_seed(7)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12, min_new_tokens=12,
                         do_sample=True, temperature=0.7, top_k=20, top_p=0.9)
    torch.manual_seed(7)
    assert torch.equal(ours.generate(prompt, 12, temperature=0.7, top_k=20, top_p=0.9), theirs)


def test_eos_stops_generation_and_pads_finished_rows():
    hf = _hf()
    ours = from_hf(hf)
    prompt = torch.randint(3, 64, (2, 4), generator=torch.Generator().manual_seed(5))
    free = ours.generate(prompt, 8, greedy=True)
    eos = int(free[0, 5])  # the second generated token of row 0
    out = ours.generate(prompt, 8, greedy=True, eos_token_id=eos)
    row0 = out[0, 4:].tolist()
    assert row0[:2] == free[0, 4:6].tolist() and all(t == eos for t in row0[1:])


def test_attention_maps_are_causal_rows_summing_to_one_and_match_the_fused_path():
    ours = from_hf(_hf())
    idx = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(6))
    logits, maps = ours(idx, return_attention=True)
    torch.testing.assert_close(logits, ours(idx))
    assert len(maps) == 2 and maps[0].shape == (2, 4, 9, 9)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(2, 4, 9, dtype=DT))
    assert torch.triu(maps[0], diagonal=1).abs().max() == 0


def test_rmsnorm_and_swiglu_match_pytorch_and_transformers():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32, dtype=DT, requires_grad=True)
    ours, torch_norm, hf_norm = RMSNorm(32).to(DT), torch.nn.RMSNorm(32, eps=1e-5).to(DT), LlamaRMSNorm(32, 1e-5).to(DT)
    with torch.no_grad():
        w = torch.rand(32, dtype=DT) + 0.5
        for m in (ours, torch_norm, hf_norm):
            m.weight.copy_(w)
    y = ours(x)
    torch.testing.assert_close(y, torch_norm(x))
    torch.testing.assert_close(ours.float()(x.float()), hf_norm.float()(x.float()))  # transformers computes in float32
    g_ours, = torch.autograd.grad(y.sum(), x)
    g_torch, = torch.autograd.grad(torch_norm(x).sum(), x)
    torch.testing.assert_close(g_ours, g_torch)
    assert RMSNorm(8).to(torch.bfloat16)(torch.ones(2, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16
    cfg = HFLlamaConfig(hidden_size=32, intermediate_size=48, hidden_act="silu", mlp_bias=False)
    mlp_hf, mlp = LlamaMLP(cfg).to(DT), SwiGLU(LlamaConfig(dim=32, hidden_dim=48, n_head=4, n_kv_head=2)).to(DT)
    mlp.load_state_dict(mlp_hf.state_dict())
    torch.testing.assert_close(mlp(x), mlp_hf(x))


def test_rope_half_layout_and_offset_match_transformers():
    cfg = HFLlamaConfig(hidden_size=64, num_attention_heads=4, rope_theta=10000.0, max_position_embeddings=32)
    rot = LlamaRotaryEmbedding(cfg)
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 6, 16), torch.randn(2, 4, 6, 16)
    pos = torch.arange(10, 16)[None]  # 6 new tokens after 10 cached ones
    cos_hf, sin_hf = rot(q, pos)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_hf, sin_hf)
    cos, sin = rope_angles(32, 16, base=10000.0, compute_dtype=torch.float32)
    torch.testing.assert_close(torch.cat([cos, cos], -1)[10:16], cos_hf[0], rtol=0, atol=0)
    torch.testing.assert_close(apply_rope(q, cos, sin, offset=10, layout="half"), q_hf)
    torch.testing.assert_close(apply_rope(k, cos, sin, offset=10, layout="half"), k_hf)
    full = apply_rope(torch.randn(1, 16, 8, dtype=DT), *rope_angles(16, 8, dtype=DT))  # offset = slice of the table
    x = torch.randn(1, 3, 8, dtype=DT)
    torch.testing.assert_close(apply_rope(x, *rope_angles(16, 8, dtype=DT), offset=5),
                               apply_rope(torch.cat([torch.zeros(1, 5, 8, dtype=DT), x], 1),
                                          *rope_angles(16, 8, dtype=DT))[:, 5:])
    assert full.shape == (1, 16, 8)
    with pytest.raises(ValueError, match="offset \\+ T = 17"):
        apply_rope(x, *rope_angles(16, 8), offset=14)
    with pytest.raises(ValueError, match="layout"):
        apply_rope(x, *rope_angles(16, 8), layout="rotate")


def test_parameter_breakdown_of_both_layouts():
    llama = Llama(LlamaConfig(vocab_size=100, dim=32, n_layer=2, n_head=4, n_kv_head=2, hidden_dim=48))
    parts = parameter_breakdown(llama)
    assert sum(parts.values()) == llama.num_parameters()
    C, H, kv = 32, 48, 2 * 8
    assert parts == {"token embedding": 100 * C, "position table": 0, "attention": 2 * (2 * C * C + 2 * C * kv),
                     "MLP": 2 * 3 * C * H, "norms": 5 * C, "head": 0}
    gpt = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=4, n_embd=32))
    g = parameter_breakdown(gpt)
    assert sum(g.values()) == gpt.num_parameters() and g["position table"] == 16 * 32 and g["norms"] == 5 * 2 * 32


def test_bad_input_and_config_raise_clear_errors():
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        LlamaConfig(n_head=9, n_kv_head=2)
    with pytest.raises(ValueError, match="even head size"):
        LlamaConfig(dim=36, n_head=4)
    m = Llama(LlamaConfig(vocab_size=10, dim=16, n_layer=1, n_head=2, n_kv_head=1, hidden_dim=8, max_seq_len=8))
    with pytest.raises(ValueError, match=r"\(B, T\) tensor of token ids"):
        m(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="exceed max_seq_len=8"):
        m(torch.zeros(1, 9, dtype=torch.long))


def test_real_smollm2_weights_same_logits_and_greedy_text_as_transformers():
    from utils.llm import chat_prompt, load_smollm2

    tokenizer, hf = load_smollm2()
    ours = from_hf(hf)
    assert ours.num_parameters() == 134_515_008
    prompts = ["The capital of France is", "def add(a, b):\n    return",
               chat_prompt(tokenizer, "What does a tokenizer do?")]
    with torch.no_grad():
        for text in prompts:
            ids = tokenizer(text, return_tensors="pt").input_ids
            assert (ours(ids) - hf(ids).logits).abs().max().item() <= 1e-4
    ids = tokenizer(prompts[2], return_tensors="pt").input_ids
    theirs = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    assert torch.equal(ours.generate(ids, 8, greedy=True, eos_token_id=tokenizer.eos_token_id), theirs)
