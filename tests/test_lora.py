"""utils.lora against peft: same outputs, merges and trainable counts for the same weights (float64)."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from utils.lora import LoRALinear, add_lora, count_parameters, load_peft_weights, lora_state_dict, merge_lora

DT = torch.float64


def _tiny_llama(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=32, pad_token_id=None)
    return LlamaForCausalLM(cfg).to(DT).eval()


def test_zero_b_means_no_change_at_step_zero_and_no_gradient_for_a():
    torch.manual_seed(0)
    base = nn.Linear(6, 4).to(DT)
    lora = LoRALinear(copy.deepcopy(base), r=2, alpha=4)
    x = torch.randn(3, 6, dtype=DT)
    torch.testing.assert_close(lora(x), base(x))
    lora(x).pow(2).sum().backward()
    assert lora.lora_A.grad.abs().max() == 0 and lora.lora_B.grad.abs().max() > 0
    assert lora.base_layer.weight.grad is None and lora.scaling == 2.0
    assert count_parameters(lora) == (2 * 6 + 4 * 2, 2 * 6 + 4 * 2 + 6 * 4 + 4)


def test_outputs_merge_and_counts_equal_peft():
    hf = _tiny_llama()
    theirs = get_peft_model(copy.deepcopy(hf), LoraConfig(r=4, lora_alpha=12, target_modules=["q_proj", "v_proj"],
                                                          lora_dropout=0.0))
    with torch.no_grad():  # a trained-looking adapter: B no longer zero
        for name, p in theirs.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    ours = copy.deepcopy(hf)
    names = add_lora(ours, ("q_proj", "v_proj"), r=4, alpha=12)
    assert len(names) == 4 and names[0] == "model.layers.0.self_attn.q_proj"
    saved = get_peft_model_state_dict(theirs)
    assert load_peft_weights(ours, saved) == 8
    idx = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(idx).logits, theirs(idx).logits)
    from utils.llama import from_hf

    ours_llama = from_hf(hf)  # our Llama: blocks at the top level, no "model." prefix
    add_lora(ours_llama, ("q_proj", "v_proj"), r=4, alpha=12)
    assert load_peft_weights(ours_llama, saved) == 8
    torch.testing.assert_close(ours_llama(idx), theirs(idx).logits, rtol=1e-5, atol=1e-6)
    trainable, total = count_parameters(ours)
    assert (trainable, total) == theirs.get_nb_trainable_parameters()
    assert set(lora_state_dict(ours)) == {k.removeprefix("base_model.model.").removesuffix(".weight") for k in saved}
    merged_theirs = theirs.merge_and_unload()
    merged_ours = merge_lora(copy.deepcopy(ours))
    assert not any(isinstance(m, LoRALinear) for m in merged_ours.modules())
    for (n1, p1), (n2, p2) in zip(merged_ours.named_parameters(), merged_theirs.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2)
    torch.testing.assert_close(merged_ours(idx).logits, ours(idx).logits)


def test_merge_then_unmerge_restores_the_base_weight():
    torch.manual_seed(0)
    lora = LoRALinear(nn.Linear(5, 3).to(DT), r=2, alpha=2)
    with torch.no_grad():
        lora.lora_B.normal_()
    w0 = lora.base_layer.weight.clone()
    x = torch.randn(4, 5, dtype=DT)
    y = lora(x)
    lora.merge()
    torch.testing.assert_close(lora.base_layer.weight, w0 + lora.lora_B @ lora.lora_A)
    torch.testing.assert_close(lora(x), y)
    with pytest.raises(RuntimeError, match="already merged"):
        lora.merge()
    lora.unmerge()
    torch.testing.assert_close(lora.base_layer.weight, w0)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="r must be a positive int"):
        LoRALinear(nn.Linear(2, 2), r=0)
    with pytest.raises(ValueError, match="no nn.Linear named"):
        add_lora(nn.Sequential(nn.Linear(2, 2)), ("q_proj",))
    model = nn.Sequential(nn.Linear(3, 3))
    add_lora(model, ("0",), r=1)
    with pytest.raises(ValueError, match="matches no LoRA parameter"):
        load_peft_weights(model, {"base_model.model.1.lora_A.weight": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="lacks"):
        load_peft_weights(model, {"base_model.model.0.lora_A.weight": torch.zeros(1, 3)})
