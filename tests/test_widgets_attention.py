import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from utils.attention import retemper, toy_qk_attention  # noqa: E402
from utils.transformer import TinyTransformer, TinyTransformerConfig  # noqa: E402
from utils.widgets.attention import (attention_view, encoder_attention, make_attention_widget,  # noqa: E402
                                     make_qk_toy_widget, parse_digits, plot_attention_view, plot_qk_toy, qk_toy,
                                     tiny_model_attention)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TinyTransformer(TinyTransformerConfig(max_len=8, d_model=16, num_heads=2, num_layers=2, d_ff=32))


@pytest.fixture(scope="module")
def tiny_bert():
    """The real MiniLM tokenizer with a tiny random BERT (2 layers, 2 heads) for speed."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from utils.pretrained import local_model_path

    tok = AutoTokenizer.from_pretrained(local_model_path())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, output_attentions=True, attn_implementation="eager")
    torch.manual_seed(0)
    return tok, BertModel(cfg).eval()


def test_retemper_identity_sharpen_flatten_and_causal():
    torch.manual_seed(0)
    scores = torch.randn(2, 4, 4, dtype=torch.float64)
    w = scores.softmax(-1)
    torch.testing.assert_close(retemper(w, 1.0), w)
    torch.testing.assert_close(retemper(w, 0.5), (scores / 0.5).softmax(-1))  # exact, not approximate
    assert retemper(w, 10.0).max() < w.max()
    c = retemper(w, 1.0, causal=True)
    assert torch.all(c.triu(1) == 0)
    torch.testing.assert_close(c.sum(-1), torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="temperature must be a positive"):
        retemper(w, 0.0)


def test_toy_qk_attention_prefers_aligned_key_and_scale_flattens():
    toy = qk_toy(0.0, 2.0, (0.0, 90.0, 180.0), 2.0)
    assert toy.weights.argmax() == 0 and toy.weights.argmin() == 2
    np.testing.assert_allclose(toy.scores, [4 / np.sqrt(2), 0.0, -4 / np.sqrt(2)], atol=1e-12)
    assert qk_toy(0.0, 2.0, (0.0, 90.0, 180.0), 2.0, temperature=10.0).weights.max() < toy.weights.max()
    with pytest.raises(ValueError, match=r"keys must be .* \[d=2 from query\]"):
        toy_qk_attention(torch.ones(2), torch.ones(3, 3))


def test_tiny_model_maps_and_view(tiny):
    maps = tiny_model_attention(tiny, parse_digits("3 1 4 1 5"))
    assert maps.tokens == ["3", "1", "4", "1", "5"] and maps.weights.shape == (2, 2, 5, 5)
    view = attention_view(maps, layer=1, head=None, query=2, temperature=0.5, causal=True)
    assert view.matrix.shape == (5, 5) and np.all(view.row[3:] == 0)
    np.testing.assert_allclose(view.row.sum(), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\)"):
        attention_view(maps, layer=2)
    with pytest.raises(ValueError, match=r"query must be an int in \[0, 5\)"):
        attention_view(maps, query=5)
    with pytest.raises(ValueError, match="digits 0-9"):
        parse_digits("3 x 4")


def test_encoder_attention_on_a_sentence(tiny_bert):
    tok, model = tiny_bert
    maps = encoder_attention("The cat sat on the mat.", tok, model)
    assert maps.tokens[0] == "[CLS]" and maps.tokens[-1] == "[SEP]" and "cat" in maps.tokens
    T = len(maps.tokens)
    assert maps.weights.shape == (2, 2, T, T)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(2, 2, T))
    with pytest.raises(ValueError, match="non-empty"):
        encoder_attention("  ", tok, model)


def test_views_draw_without_mutating_and_update_is_fast(tiny):
    maps = tiny_model_attention(tiny, [1, 2, 3, 4, 5, 6, 7, 8])
    view = attention_view(maps, layer=0, head=1, query=3)
    before = view.matrix.copy()
    axes = plot_attention_view(view)
    assert len(axes) == 2 and axes[0].get_title().startswith("tiny model: layer 0, head 1")
    np.testing.assert_array_equal(view.matrix, before)
    plot_qk_toy(qk_toy())
    plt.close("all")
    start = time.perf_counter()
    for t in np.linspace(0.2, 5, 50):
        attention_view(maps, layer=1, head=0, query=2, temperature=float(t), causal=True)
    assert (time.perf_counter() - start) / 50 < 0.05  # the compute budget of one update


def test_builders_run_without_a_browser(tiny, tiny_bert):
    import ipywidgets as W

    ui = make_attention_widget(tiny, presets={"reverse sample": "9 8 7 6"})
    assert isinstance(ui, W.VBox)
    text, preset = ui.children[0].children
    preset.value = "9 8 7 6"
    assert text.value == "9 8 7 6"
    query = ui.children[2].children[0]
    assert query.max == 3
    text.value = "not digits"  # a bad input lands in the error Output, not in a traceback
    errors = ui.children[3]
    assert any("digits 0-9" in o.get("text", "") for o in errors.outputs)
    tok, model = tiny_bert
    ui2 = make_attention_widget(model, tok, text="Hello world")
    assert ui2.children[2].children[0].max == 3  # [CLS] hello world [SEP]
    assert isinstance(make_qk_toy_widget(), W.VBox)
    plt.close("all")
