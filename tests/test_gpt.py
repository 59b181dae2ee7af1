import pytest
import torch

from utils.gpt import GPT, GPTConfig, from_hf_gpt2, lm_loss, to_hf_gpt2, train_flops_per_token
from utils.sampling import generate

CFG = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return GPT(CFG).to(dtype).eval()


def test_shapes_loss_and_attention_path():
    m = _model()
    idx = torch.randint(0, 40, (3, 10))
    logits, loss, attn = m(idx, idx, return_attention=True)
    assert logits.shape == (3, 10, 40) and len(attn) == 2 and attn[0].shape == (3, 2, 10, 10)
    torch.testing.assert_close(logits, m(idx))  # the explicit attention path equals the fused one
    assert torch.triu(attn[1][0, 0], diagonal=1).abs().max() == 0  # causal
    torch.testing.assert_close(attn[0].sum(-1), torch.ones(3, 2, 10, dtype=torch.float64))
    torch.testing.assert_close(loss, lm_loss(logits, idx))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 40, (8, 16), generator=g), torch.randint(0, 40, (8, 16), generator=g)
    assert abs(m(x, y)[1].item() - torch.log(torch.tensor(40.0)).item()) < 0.1  # near-uniform at initialisation


def test_parameter_count_by_formula():
    m = _model()
    C, V, L, T = CFG.n_embd, CFG.vocab_size, CFG.n_layer, CFG.block_size
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    assert m.num_parameters() == V * C + T * C + L * per_block + 2 * C
    assert train_flops_per_token(m, 16) == 6 * (m.num_parameters() - T * C) + 12 * L * 16 * C


def test_same_logits_loss_and_greedy_text_as_transformers_gpt2():
    m = _model()
    hf = to_hf_gpt2(m)
    assert type(hf).__name__ == "GPT2LMHeadModel"
    assert sum(p.numel() for p in hf.parameters()) == m.num_parameters()
    idx = torch.randint(0, 40, (2, 16))
    ours_logits = m(idx)
    out = hf(input_ids=idx, labels=idx)  # transformers shifts the labels itself
    torch.testing.assert_close(out.logits, ours_logits)
    torch.testing.assert_close(out.loss.double(), lm_loss(ours_logits[:, :-1], idx[:, 1:]), rtol=1e-5, atol=1e-6)
    prompt = idx[:, :4]
    ours = generate(m, prompt, 8, block_size=16, greedy=True)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8, do_sample=False,
                         pad_token_id=0)
    assert torch.equal(ours, theirs)
    back = from_hf_gpt2(hf).eval()
    torch.testing.assert_close(back(idx), ours_logits)


def test_gradients_match_transformers():
    m = _model()
    hf = to_hf_gpt2(m)
    idx = torch.randint(0, 40, (2, 12))
    lm_loss(m(idx)[:, :-1], idx[:, 1:]).backward()
    hf(input_ids=idx, labels=idx).loss.backward()
    torch.testing.assert_close(hf.transformer.h[1].attn.c_attn.weight.grad, m.h[1].attn.c_attn.weight.grad.T,
                               rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(hf.transformer.wte.weight.grad, m.wte.weight.grad, rtol=1e-4, atol=1e-7)


def test_bad_input_and_config():
    m = _model()
    with pytest.raises(ValueError, match="exceeds block_size=16"):
        m(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(TypeError, match="idx must be an int64 tensor"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"idx must hold ids in \[0, "):
        m(torch.full((1, 4), 10_000))
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match=r"targets must be an int64 tensor of shape \(B, T\) = \(2, 3\)"):
        lm_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import load_model, save_model

    m = _model(torch.float32)
    save_model(m, str(tmp_path / "gpt.safetensors"))  # handles the tied head
    fresh = GPT(CFG).eval()
    load_model(fresh, str(tmp_path / "gpt.safetensors"))
    idx = torch.randint(0, 40, (1, 8))
    torch.testing.assert_close(fresh(idx), m(idx))


def test_estimate_loss_is_repeatable_and_keeps_the_mode():
    from utils.gpt import estimate_loss

    m = GPT(CFG).train()
    data = torch.randint(0, 40, (500,))
    a = estimate_loss(m, data, 16, batches=3, batch_size=4)
    assert m.training and a == estimate_loss(m, data, 16, batches=3, batch_size=4)
    assert abs(a - torch.log(torch.tensor(40.0)).item()) < 0.2  # untrained: about ln V
