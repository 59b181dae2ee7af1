import pytest
import torch

from utils import pretrained


def test_local_path_of_packaged_minilm():
    path = pretrained.local_model_path("all-MiniLM-L6-v2")
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()


def test_unavailable_model_gives_one_clear_message(monkeypatch):
    monkeypatch.setenv("LMHO_ONLINE", "0")
    with pytest.raises(pretrained.ModelNotAvailableError, match="not available offline"):
        pretrained.load_pretrained_encoder("bert-base-uncased")
    with pytest.raises(TypeError, match="name"):
        pretrained.local_model_path(42)


def test_minilm_embeddings_rank_a_paraphrase_above_an_unrelated_sentence():
    tok, model = pretrained.load_pretrained_encoder()
    emb = pretrained.embed_sentences(
        ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell today."],
        tok, model)
    assert emb.shape == (3, 384)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    sim = emb @ emb.T
    assert sim[0, 1] > 0.5 > sim[0, 2]
    with pytest.raises(TypeError, match="sentences"):
        pretrained.embed_sentences("one string", tok, model)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pretrained.mean_pool(h, mask).item() == 2.0
    with pytest.raises(ValueError, match="attention_mask"):
        pretrained.mean_pool(h, torch.ones(1, 2))
