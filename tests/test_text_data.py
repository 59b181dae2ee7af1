import pytest
import torch

from utils.text_data import CharVocab, char_lm_split, corpus_path, get_batch, load_corpus


def test_corpus_ships_with_the_package():
    text = load_corpus()
    assert len(text) > 80_000
    assert "gradient" in text and "注意力" in text  # English prose and the glossary's Chinese names
    assert open(corpus_path(), encoding="utf-8").read() == text


def test_char_vocab_round_trip_and_unknown_character():
    v = CharVocab("hello world")
    assert len(v) == 8
    assert v.decode(v.encode("low")) == "low"
    assert v.decode(torch.tensor(v.encode("hold"))) == "hold"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        v.encode("z")
    with pytest.raises(ValueError, match="non-empty"):
        CharVocab("")


def test_split_and_batches_are_shifted_by_one():
    split = char_lm_split()
    n = len(split.train) + len(split.val)
    assert len(split.val) == n - int(n * 0.9)
    g = torch.Generator().manual_seed(0)
    x, y = get_batch(split.train, 16, 4, generator=g)
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match=r"data must be an integer tensor of shape \(n,\)"):
        get_batch(split.train.view(1, -1), 16, 4)
    with pytest.raises(ValueError, match="block_size"):
        get_batch(split.train[:10], 16, 4)
