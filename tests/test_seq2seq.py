import pytest
import torch
from torch import nn

from utils.encoder_decoder import DecoderBlock, Seq2SeqTransformerConfig, TransformerSeq2Seq
from utils.seq2seq import (AdditiveAttention, Seq2SeqGRU, accuracy_by_length, greedy_decode, sample_batch,
                           shift_right, teacher_forced_accuracy, train_seq2seq)

DT = torch.float64


def test_additive_attention_follows_the_formula():
    torch.manual_seed(0)
    att = AdditiveAttention(5, 4, 6).double()
    s, h = torch.randn(3, 5, dtype=DT), torch.randn(3, 7, 4, dtype=DT)
    context, weights = att(s, h)
    for b in range(3):  # e_j = v^T tanh(W s + U h_j), a = softmax(e), c = sum_j a_j h_j
        e = torch.stack([att.v.weight[0] @ torch.tanh(att.W.weight @ s[b] + att.U.weight @ h[b, j] + att.U.bias)
                         for j in range(7)])
        a = torch.softmax(e, 0)
        torch.testing.assert_close(weights[b], a)
        torch.testing.assert_close(context[b], a @ h[b])
    assert torch.autograd.gradcheck(lambda s, h: att(s, h)[0], (s.requires_grad_(), h.requires_grad_()))
    with pytest.raises(ValueError, match=r"keys must be .* \[B=2 from query\]"):
        att(torch.zeros(2, 5, dtype=DT), torch.zeros(3, 7, 4, dtype=DT))


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_matches_torch_decoder_layer(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=DT).eval()
    ours = DecoderBlock(16, 4, 32, norm_first=norm_first).double().eval()
    ours.load_state_dict(ref.state_dict())
    x, memory = torch.randn(2, 5, 16, dtype=DT, requires_grad=True), torch.randn(2, 7, 16, dtype=DT)
    out, w_self, w_cross = ours(x, memory)
    theirs = ref(x, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5, dtype=DT), tgt_is_causal=True)
    torch.testing.assert_close(out, theirs)
    assert w_self.shape == (2, 4, 5, 5) and w_cross.shape == (2, 4, 5, 7)
    assert bool((w_self.triu(diagonal=1) == 0).all())  # causal
    g = torch.randn(out.shape, dtype=DT)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(theirs, x, g)[0])


def test_models_share_the_interface_and_teacher_forcing_input():
    src, y = sample_batch("reverse", 4, 6, seed=0)
    torch.testing.assert_close(y, src.flip(1))
    tgt_in = shift_right(y, 10)
    assert tgt_in[:, 0].tolist() == [10] * 4 and torch.equal(tgt_in[:, 1:], y[:, :-1])
    torch.manual_seed(0)
    for model in (Seq2SeqGRU(hidden_size=16), Seq2SeqGRU(hidden_size=16, attention=True),
                  TransformerSeq2Seq(Seq2SeqTransformerConfig(d_model=16, d_ff=32, num_layers=1))):
        logits, weights = model(src, tgt_in)
        assert logits.shape == (4, 6, 10)
        if weights is not None:
            assert weights.shape == (4, 6, 6)
            torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))
        pred, _ = greedy_decode(model, src)
        assert pred.shape == (4, 6) and pred.max() < 10
        with pytest.raises(TypeError, match="src must be an int64 tensor"):
            model(src.float(), tgt_in)


def test_greedy_decoding_of_a_causal_model_equals_teacher_forcing_on_its_own_output():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(Seq2SeqTransformerConfig(d_model=16, d_ff=32, num_layers=1)).eval()
    src, _ = sample_batch("reverse", 3, 5, seed=1)
    pred, _ = greedy_decode(model, src)
    logits, _ = model(src, shift_right(pred, model.bos))  # one pass over the model's own output
    assert torch.equal(logits.argmax(-1), pred)


def test_training_learns_short_reversal_and_accuracy_by_length_reports_each_length():
    torch.manual_seed(0)
    model = Seq2SeqGRU(hidden_size=32, attention=True)
    losses = train_seq2seq(model, "reverse", lengths=(3, 4), steps=150, batch_size=32, lr=1e-2, progress=False)
    assert len(losses) == 150 and losses[-1] < 0.5 * losses[0]
    acc = accuracy_by_length(model, "reverse", [3, 4], num_samples=100)
    assert acc.lengths == [3, 4] and min(acc.token) > 0.8
    assert 0.0 <= teacher_forced_accuracy(model, "reverse", 4) <= 1.0
    with pytest.raises(ValueError, match="lengths must be"):
        train_seq2seq(model, lengths=(5, 3), steps=1, progress=False)
    with pytest.raises(ValueError, match="task must be"):
        sample_batch("parity", 2, 4, 0)
