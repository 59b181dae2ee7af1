"""The training and embedding loops of utils draw a tqdm.auto bar unless progress=False (outside a notebook
tqdm.auto writes the bar to stderr), and the bar does not change what they compute."""

import torch

from utils.pretrained import embed_sentences, load_pretrained_encoder
from utils.data import make_sequence_task
from utils.rnn_models import SequenceRegressor, train_regressor
from utils.scaling import CharMLP, CharMLPConfig, train_char_lm
from utils.text_data import char_lm_split
from utils.transformer import TinyTransformer, TinyTransformerConfig, train_sequence_model


def _twice(capsys, run):
    """Run ``run(progress)`` with and without a bar; return both results and what each wrote to stderr."""
    capsys.readouterr()
    with_bar = run(True)
    err_with = capsys.readouterr().err
    without = run(False)
    err_without = capsys.readouterr().err
    return with_bar, without, err_with, err_without


def test_train_char_lm(capsys):
    split = char_lm_split()
    cfg = CharMLPConfig(vocab_size=len(split.vocab), context_size=8, embed_dim=4, hidden_size=16, num_layers=1)

    def run(progress):
        torch.manual_seed(0)
        return train_char_lm(CharMLP(cfg), split.train[:3000], split.val[:500], steps=12, batch_size=16,
                             eval_every=6, progress=progress)

    a, b, err_a, err_b = _twice(capsys, run)
    assert "training" in err_a and err_b == ""
    assert a.val_loss == b.val_loss


def test_train_regressor(capsys):
    X, y = make_sequence_task("adding", 96, 6, seed=0)
    Xt, yt = make_sequence_task("adding", 32, 6, seed=1)

    def run(progress):
        torch.manual_seed(0)
        return train_regressor(SequenceRegressor("gru", 2, 8), X, y, Xt, yt, epochs=2, batch_size=32,
                               progress=progress)

    a, b, err_a, err_b = _twice(capsys, run)
    assert "training gru" in err_a and "/6 " in err_a and err_b == ""  # 2 epochs x 3 batches
    assert a.test_mse == b.test_mse


def test_train_sequence_model(capsys):
    X, y = make_sequence_task("reverse", 64, 4, seed=0)

    def run(progress):
        torch.manual_seed(0)
        model = TinyTransformer(TinyTransformerConfig(max_len=4, d_model=16, num_heads=2, num_layers=1, d_ff=32))
        return train_sequence_model(model, X, y, X, y, steps=10, batch_size=8, progress=progress)

    a, b, err_a, err_b = _twice(capsys, run)
    assert "training" in err_a and err_b == ""
    assert a.losses == b.losses


def test_embed_sentences_shows_a_bar_only_for_several_batches(capsys):
    tok, model = load_pretrained_encoder()
    sentences = ["A man plays a guitar.", "Someone plays an instrument.", "The market fell."]

    a, b, err_a, err_b = _twice(capsys, lambda p: embed_sentences(sentences, tok, model, batch_size=2, progress=p))
    assert "embedding" in err_a and err_b == ""
    torch.testing.assert_close(a, b)
    embed_sentences(sentences, tok, model)  # one batch: nothing to show
    assert capsys.readouterr().err == ""
