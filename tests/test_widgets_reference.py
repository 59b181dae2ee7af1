"""The Python references of the in-browser explorers (utils.widgets.reference) and the HTML outputs
that carry the explorers (utils.widgets.browser); no browser needed (tests/test_widgets_browser.py
compares the browser's numbers with these references)."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from utils.data import make_sequence_task
from utils.rnn_models import SequenceRegressor, trace_model
from utils.transformer import TinyTransformer, TinyTransformerConfig
from utils.widgets.browser import BrowserExplorer, encode_f32, encode_unit_u16, js_source, standalone_page
from utils.widgets.reference import (conv_reference, gate_trace, mulberry_normal, mulberry_uniform, qkv_toy,
                                     saturation_stats, tiny_transformer_forward)


def test_conv_reference_equals_torch_conv2d():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 9, 7, generator=g), torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    for stride, padding, dilation in ((1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 3, 3)):
        ref = conv_reference(x.numpy(), w.numpy(), b.numpy(), stride=stride, padding=padding, dilation=dilation)
        want = F.conv2d(x[None].double(), w.double(), b.double(), stride=stride, padding=padding, dilation=dilation)[0]
        np.testing.assert_allclose(ref, want.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="C_in, H, W"):
        conv_reference(np.zeros((8, 8)), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gate_trace_without_clamp_is_trace_model(cell):
    torch.manual_seed(0)
    model = SequenceRegressor(cell, 2, 8)
    X, _ = make_sequence_task("adding", 1, 15, seed=0)
    run, view = gate_trace(model, X[0]), trace_model(model, X[0])
    assert list(run.view.panels) == list(view.panels)
    for k in view.panels:
        np.testing.assert_allclose(run.view.panels[k], view.panels[k], atol=1e-5)
    np.testing.assert_allclose(run.view.keep, view.keep, atol=1e-5)
    assert abs(run.view.prediction - view.prediction) < 1e-5
    with torch.no_grad():
        readout = model.head(model.hidden_states(X[:1])).squeeze(-1)[0].numpy()  # head(h_t) at every step
    np.testing.assert_allclose(run.readout, readout, atol=1e-5)


@pytest.mark.parametrize("cell, value", [("gru", 1.0), ("lstm", 0.0)])
def test_gate_trace_clamp_forces_the_gate_and_forgets(cell, value):
    torch.manual_seed(1)
    model = SequenceRegressor(cell, 2, 8)
    X, _ = make_sequence_task("adding", 1, 12, seed=2)
    free = gate_trace(model, X[0])
    run = gate_trace(model, X[0], clamp_units=(1, 4), clamp_value=value, clamp_from=5)
    gate = "update z" if cell == "gru" else "forget f"
    assert (run.view.panels[gate][5:, [1, 4]] == value).all()
    np.testing.assert_allclose(run.view.panels[gate][:5], free.view.panels[gate][:5])  # untouched before step 5
    other = [u for u in range(8) if u not in (1, 4)]
    assert not np.allclose(run.view.panels[gate][6:, other], free.view.panels[gate][6:, other])  # the others react
    if cell == "lstm":  # f = 0: the cell state keeps nothing of its past, c_t = i_t g_t
        assert run.clamp_value == 0.0
    with pytest.raises(ValueError, match="clamp_units"):
        gate_trace(model, X[0], clamp_units=(9,), clamp_value=1.0)
    with pytest.raises(ValueError, match="clamp_value"):
        gate_trace(model, X[0], clamp_units=(1,), clamp_value=None)
    with pytest.raises(ValueError, match="gated"):
        gate_trace(SequenceRegressor("rnn", 2, 4), X[0])


def test_tiny_transformer_forward_is_the_model_and_temperature_scales_scores():
    torch.manual_seed(0)
    for norm_first, positional in ((True, "learned"), (False, "sinusoidal")):
        model = TinyTransformer(TinyTransformerConfig(vocab_size=10, max_len=8, d_model=16, num_heads=2, d_ff=32,
                                                      norm_first=norm_first, positional=positional))
        idx = [3, 1, 4, 1, 5, 9]
        logits, maps = tiny_transformer_forward(model, idx)
        with torch.no_grad():
            lg, mp = model.forward_with_attention(torch.tensor([idx]))
        np.testing.assert_allclose(logits, lg[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(maps, torch.stack([m[0] for m in mp]).numpy(), atol=1e-6)
        # layer 0 sees the same scores: temperature tau and d_k = hs * tau**2 give the same maps there
        _, a = tiny_transformer_forward(model, idx, temperature=2.0)
        _, b = tiny_transformer_forward(model, idx, d_k=8 * 4.0)
        np.testing.assert_allclose(a, b, atol=1e-12)
        flat = tiny_transformer_forward(model, idx, temperature=1e3)[1][0]
        np.testing.assert_allclose(flat, np.full_like(flat, 1 / 6), atol=1e-2)
    batch = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    lb, mb = tiny_transformer_forward(model, batch, temperature=0.5)
    assert lb.shape == (2, 4, 10) and mb.shape == (2, 2, 2, 4, 4)
    np.testing.assert_allclose(lb[1], tiny_transformer_forward(model, [4, 3, 2, 1], temperature=0.5)[0], atol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        tiny_transformer_forward(model, [1, 2], temperature=0)
    with pytest.raises(ValueError, match="idx"):
        tiny_transformer_forward(model, list(range(9)))


def test_qkv_toy_is_a_convex_combination_and_length_beats_angle():
    toy = qkv_toy(20, 2.0, (0, 70, 150), (2, 2, 2), ((3, 0.5), (-1, 3), (-2.5, -2)))
    assert abs(toy.weights.sum() - 1) < 1e-12 and (toy.weights > 0).all()
    np.testing.assert_allclose(toy.output, toy.weights @ toy.values)
    np.testing.assert_allclose(toy.scores, toy.keys @ toy.query / math.sqrt(2))
    # a long key at 60 degrees beats a short one along the query: a dot product is not a cosine
    toy = qkv_toy(0, 1.0, (0, 60, 180), (0.5, 4.0, 1.0), ((1, 0), (0, 1), (-1, 0)))
    assert toy.weights.argmax() == 1
    with pytest.raises(ValueError, match="one length"):
        qkv_toy(0, 1, (0, 1), (1,), ((0, 0), (1, 1)))


def test_mulberry_generator_and_saturation_stats():
    u = mulberry_uniform(0, 1000)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    np.testing.assert_allclose(mulberry_uniform(7, 5), mulberry_uniform(7, 9)[:5])  # a stream, not a reseeding
    z = mulberry_normal(1, 20000)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    small, large = saturation_stats(4), saturation_stats(1024)
    assert abs(large["scaled"]["std"] - 1) < 0.15 and large["unscaled"]["std"] > 25
    assert large["unscaled"]["max_weight"] > 0.9 and large["scaled"]["entropy"] > 2.5
    assert small["scaled"]["entropy"] > large["unscaled"]["entropy"]
    with pytest.raises(ValueError, match="d_k"):
        saturation_stats(0)


def test_encoders_roundtrip():
    a = np.array([[0.1, -2.5], [3e-8, 1e6]], dtype=np.float32)
    raw = base64.b64decode(encode_f32(a))
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4").reshape(2, 2), a)
    w = np.linspace(0, 1, 11)
    q = np.frombuffer(base64.b64decode(encode_unit_u16(w)), dtype="<u2") / 65535
    assert np.abs(q - w).max() < 8e-6
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_unit_u16([0.5, 1.5])


def test_browser_explorer_html_is_self_contained():
    ex = BrowserExplorer("conv", {"H": 1, "W": 1, "text": "</script><b>"}, title="t")
    html = ex._repr_html_()
    assert html.count("<script>") == 1 and html.count("</script>") == 1  # the data cannot close the script
    assert set(re.findall(r"https?://[^\s\"']+", html)) == {"http://www.w3.org/2000/svg"}  # a namespace, no download
    assert "cdn" not in html.lower() and " src=" not in html
    assert "LMHO.mount_conv" in html and js_source("core") in html and js_source("conv") in html
    assert html != ex._repr_html_()  # each display gets its own element id
    config = json.loads(ex.config_json.replace("<\\/", "</"))
    assert config["text"] == "</script><b>" and config["title"] == "t"
    assert standalone_page([ex]).startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="kind"):
        BrowserExplorer("plot", {})
    with pytest.raises(TypeError, match="config"):
        BrowserExplorer("conv", [])
    with pytest.raises(ValueError, match="name"):
        js_source("../x")
