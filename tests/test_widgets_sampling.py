import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from utils.gpt import GPT, GPTConfig  # noqa: E402
from utils.text_data import CharVocab  # noqa: E402
from utils.widgets.sampling import (SamplingSettings, make_sampling_widget, next_token_distribution,  # noqa: E402
                                    plot_next_token, sample_text)

VOCAB = CharVocab("abcdefgh ")


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=len(VOCAB), block_size=8, n_layer=1, n_head=1, n_embd=16)).eval()


def test_distribution_and_plot(model):
    dist = next_token_distribution(model, VOCAB.encode("abc"), 8, SamplingSettings(top_k=3))
    assert dist.before.shape == (9,) and int((dist.after > 0).sum()) == 3
    ax = plot_next_token(dist, VOCAB.chars, top=5)
    assert "3 of 9 tokens" in ax.get_title() and len(ax.get_xticklabels()) == 5
    with pytest.raises(ValueError, match="prompt is empty"):
        next_token_distribution(model, [], 8, SamplingSettings())
    plt.close("all")


def test_sample_text_is_seeded_and_greedy_is_deterministic(model):
    s = SamplingSettings(temperature=1.5)
    a = sample_text(model, VOCAB.encode, VOCAB.decode, "ab", s, block_size=8, max_new_tokens=20, seed=3)
    b = sample_text(model, VOCAB.encode, VOCAB.decode, "ab", s, block_size=8, max_new_tokens=20, seed=3)
    assert a == b and a.startswith("ab") and len(a) == 22
    g = sample_text(model, VOCAB.encode, VOCAB.decode, "ab", s, block_size=8, max_new_tokens=5, greedy=True)
    assert g == sample_text(model, VOCAB.encode, VOCAB.decode, "ab", s, block_size=8, max_new_tokens=5, greedy=True,
                            seed=9)


def test_widget_reacts_and_reports_bad_prompts(model):
    ui = make_sampling_widget(model, VOCAB.encode, VOCAB.decode, VOCAB.chars, block_size=8, prompt="abc")
    (text, seed), (temperature, top_k, top_p) = ui.children[0].children, ui.children[1].children
    top_k.value = 2
    assert ui.update() < 5.0
    text.value = "xyz"  # characters outside the vocabulary: a message, not an exception
    assert ui.update() < 5.0
    plt.close("all")


def test_widget_displays_its_kernel_free_counterpart(model, monkeypatch):
    import IPython.display

    from utils.widgets.fallback import LIVE_NOTE, LiveWithFallback

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    ui = make_sampling_widget(model, VOCAB.encode, VOCAB.decode, VOCAB.chars, block_size=8, prompt="abc")
    [obj] = shown
    html = obj._repr_mimebundle_()["text/html"]
    assert isinstance(obj, LiveWithFallback) and obj.widget is ui
    assert html.count("<img") == 1 and "<pre" in html and "abc" in html and LIVE_NOTE in html
    plt.close("all")
