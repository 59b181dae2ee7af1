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
    # no causal-mask toggle on a bidirectional encoder's weights: it would mislead
    assert not any(isinstance(c, W.Checkbox) for box in ui2.children[:3] for c in box.children)
    assert isinstance(make_qk_toy_widget(), W.VBox)
    plt.close("all")


def test_browser_attention_builders(tiny):
    from utils.widgets.attention import (AttentionMaps, attention_explorer, dk_explorer, qkv_explorer,
                                         stored_attention_explorer)

    ex = attention_explorer(tiny, presets={"p": "1 2 3"}, task="reverse")
    m = ex.config["model"]
    assert (m["C"], m["nh"], len(m["blocks"])) == (tiny.config.d_model, tiny.config.num_heads, tiny.config.num_layers)
    with pytest.raises(ValueError, match="task"):
        attention_explorer(tiny, task="translate")
    with pytest.raises(ValueError, match="digits"):
        attention_explorer(tiny, inputs=("1 2", "x"))
    with pytest.raises(TypeError, match="TinyTransformer"):
        attention_explorer(torch.nn.Linear(2, 2))
    assert qkv_explorer().mount == "qkv" and dk_explorer(d_k=8).config["dk"] == 8
    with pytest.raises(ValueError, match="power of two"):
        dk_explorer(d_k=100)
    w = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    maps = {"a b c d": AttentionMaps(list("abcd"), w, "m")}
    ex = stored_attention_explorer({"enc": maps, "dec": maps}, causal={"dec": True}, layers={"dec": [1]})
    enc, dec = ex.config["sources"]
    assert enc["layers"] == [0, 1] and dec["layers"] == [1]
    assert "bidirectional" in enc["note"] and "causal" in dec["note"]
    with pytest.raises(ValueError, match="layer indices"):
        stored_attention_explorer({"enc": maps}, layers={"enc": [2]})
    with pytest.raises(ValueError, match="sentences"):
        stored_attention_explorer({"enc": [maps["a b c d"]]})


def test_stored_maps_hook_takes_an_encoder_and_a_causal_lm(tiny_bert):
    # the hook of chapter 43: maps of a causal LM (SmolLM2 in the book) join the encoder's as one more
    # source; here a tiny random Llama with grouped-query attention stands in for it
    from transformers import LlamaConfig, LlamaForCausalLM

    from utils.widgets.attention import attention_maps_for_texts, stored_attention_explorer

    tok, bert = tiny_bert
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    torch.manual_seed(0)
    lm = LlamaForCausalLM(cfg).eval()
    lm.config.output_attentions = True
    texts = ["the cat sat", "it was too tired"]
    enc, dec = attention_maps_for_texts(texts, tok, bert), attention_maps_for_texts(texts, tok, lm)
    w = dec["the cat sat"].weights  # (L, nh, T, T)
    assert w.shape[:2] == (3, 4) and torch.triu(w, diagonal=1).abs().max() == 0  # causal: nothing above the diagonal
    ex = stored_attention_explorer({"encoder": enc, "causal LM": dec}, causal={"causal LM": True},
                                   layers={"causal LM": [0, 2]})
    src = {s["name"]: s for s in ex.config["sources"]}
    assert src["causal LM"]["layers"] == [0, 2] and src["causal LM"]["causal"]
    assert [s["text"] for s in src["encoder"]["sentences"]] == texts
