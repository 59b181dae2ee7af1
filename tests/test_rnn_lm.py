import math

import pytest
import torch

from utils.rnn_lm import CharRNNLM, evaluate_lm, perplexity, sample, stream_batches, train_tbptt
from utils.text_data import CharVocab


def test_stream_batches_cuts_contiguous_rows():
    data = torch.arange(23)
    s = stream_batches(data, 4)
    assert s.shape == (4, 5) and s[1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="batch_size"):
        stream_batches(data, 20)


def test_untrained_model_is_near_uniform_and_training_lowers_the_loss():
    text = "abcabcabcabd" * 40
    vocab = CharVocab(text)
    data = torch.tensor(vocab.encode(text))
    torch.manual_seed(0)
    model = CharRNNLM(len(vocab), embed_size=8, hidden_size=16)
    before = evaluate_lm(model, data, batch_size=4, bptt=16)
    assert abs(before - math.log(len(vocab))) < 0.3  # about log V nats: uniform guessing
    losses = train_tbptt(model, data, batch_size=4, bptt=16, epochs=8, lr=1e-2, progress=False)
    after = evaluate_lm(model, data, batch_size=4, bptt=16)
    assert after < 0.5 * before and losses[-1] < losses[0]
    assert perplexity(after) == pytest.approx(math.exp(after))
    # the carried state only helps: resetting it every 4 characters cannot do better
    assert evaluate_lm(model, data, batch_size=4, bptt=4, carry_state=False) >= after - 1e-6
    out = sample(model, vocab, "ab", 20, generator=torch.Generator().manual_seed(0))
    assert out.startswith("ab") and len(out) == 22 and set(out) <= set(vocab.chars)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, vocab, "", 5)
    with pytest.raises(TypeError, match="idx must be an int64 tensor"):
        model(torch.zeros(2, 3))
