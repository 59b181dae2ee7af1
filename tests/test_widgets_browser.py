"""The in-browser explorers (utils.widgets.browser), driven in headless Chromium through Playwright.

Each test types an input into an explorer as a reader would, reads the numbers the page renders
(every rendered number carries its exact value in ``data-v``) and compares them with the Python
reference of :mod:`utils.widgets.reference` (the book's own convolution, recurrent cells and
Transformer), within 1e-4. The last tests time one update (a slider move or a keystroke: the
handler, the recompute and the browser's layout; the fastest of three repetitions of each change)
and require the 95th percentile to stay under 50 ms, load the explorer outputs stored in the chapter notebooks to check that they start, and run
two explorers in a real JupyterLab. The largest differences and the update times are written to
``test-artifacts/widget_differences.json`` and ``widget_timings.json``.

Skipped with a message when Chromium is missing locally; in CI (``CI`` set) that is a failure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from browser import ARTIFACTS, CHROMIUM_ARGS, ROOT, require_browser
from utils.conv_explorer import parse_kernel
from utils.data import make_sequence_task
from utils.rnn_models import SequenceRegressor, parse_adding_sequence, trace_model
from utils.transformer import TinyTransformer, TinyTransformerConfig
from utils.widgets.attention import (AttentionMaps, attention_explorer, dk_explorer, qkv_explorer,
                                    stored_attention_explorer)
from utils.widgets.browser import standalone_page
from utils.widgets.conv import conv_explorer, explorer_images, learned_kernels
from utils.widgets.gating import gating_explorer
from utils.widgets.reference import conv_reference, gate_trace, qkv_toy, saturation_stats, tiny_transformer_forward

TOL = 1e-4
TIMINGS: dict[str, dict[str, float]] = {}
DIFFS: dict[str, float] = {}  # largest |browser - Python| per explorer, written to test-artifacts
NOTEBOOKS = ["chapters/03_algorithms/20_convolution.ipynb", "chapters/03_algorithms/31_gates_gru_lstm.ipynb",
             "chapters/03_algorithms/40_attention.ipynb", "chapters/03_algorithms/42_the_transformer.ipynb",
             "chapters/03_algorithms/43_attention_in_a_pretrained_model.ipynb"]


@pytest.fixture(scope="module")
def page():
    path = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1300, "height": 1000})
        pg.set_default_timeout(60_000)
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.lmho_errors = errors
        yield pg
        browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    if TIMINGS:
        (ARTIFACTS / "widget_timings.json").write_text(json.dumps(TIMINGS, indent=1))
    if DIFFS:
        (ARTIFACTS / "widget_differences.json").write_text(json.dumps(DIFFS, indent=1))


def show(page, explorer):
    """Load a page holding only ``explorer``; return the CSS selector of its root."""
    page.lmho_errors.clear()
    page.set_content(standalone_page([explorer]))
    root = f".lmho-explorer[data-kind={explorer.mount}]"
    page.wait_for_selector(root + "[data-ready='1']", state="attached")
    return root


def set_value(page, selector, value, event="input"):
    """Set a control's value and fire the event a reader's action fires (range, number, select)."""
    page.eval_on_selector(selector, "(e, a) => { e.value = a[0]; e.dispatchEvent(new Event(a[1], {bubbles: true})); }",
                          [str(value), event])


def values(page, selector) -> np.ndarray:
    """The exact values (``data-v``) of the rendered cells under ``selector``, in document order."""
    return np.array(page.eval_on_selector_all(selector, "els => els.map(e => parseFloat(e.getAttribute('data-v')))"))


def close(name, got, want, scale=1.0):
    """Assert |got - want| < 1e-4 * scale everywhere and record the largest difference under ``name``."""
    diff = float(np.max(np.abs(np.asarray(got, dtype=float) - np.asarray(want, dtype=float)))) / scale
    DIFFS[name] = max(DIFFS.get(name, 0.0), diff)
    assert diff < TOL, (name, diff)


def no_errors(page, root):
    assert page.lmho_errors == [], page.lmho_errors
    assert page.get_attribute(root, "data-error") is None, page.get_attribute(root, "data-error")


# ---------------------------------------------------------------- convolution

def test_conv_explorer_equals_conv2d_for_typed_kernels_and_drawn_input(page):
    root = show(page, conv_explorer())
    set_value(page, f"{root} input[aria-label='input channels']", 2)
    set_value(page, f"{root} input[aria-label='output channels']", 3)
    set_value(page, f"{root} input[aria-label='stride']", 2)
    set_value(page, f"{root} input[aria-label='padding']", 2)
    set_value(page, f"{root} input[aria-label='dilation']", 2)
    images = explorer_images()
    names = list(images)
    set_value(page, f"{root} select[aria-label='channel 1']", names[3], "change")
    texts = [["1 2 0; -1 .5 3; 0 0 -2", "0.25 -1 0; 1 1 1; 2, -3, 0.5"],
             ["-1 0 1; -2 0 2; -1 0 1", "0 0 0; 0 1 0; 0 0 0"],
             ["1e-1 2 3; 4 5 6; 7 8 -9", "-0.5 0.5 -0.5; 0.5 -0.5 0.5; 1 1 1"]]
    biases = [0.5, -1.25, 0]
    for o in range(3):
        for c in range(2):
            page.fill(f"{root} input.lmho-kernel[data-o='{o}'][data-c='{c}']", texts[o][c])  # typed, keystroke events
        page.fill(f"{root} input.lmho-bias[data-o='{o}']", str(biases[o]))
    # draw: the brush writes 0.75 into three cells of channel 1 (grid rows/cols include the padding of 2)
    page.fill(f"{root} input[aria-label='brush value']", "0.75")
    panel = f"{root} .lmho-inpanel[data-c='1'] .lmho-cell"
    for r, c in ((2, 2), (5, 7), (9, 4)):
        page.dispatch_event(f"{panel}[data-r='{r}'][data-c='{c}']", "pointerdown")
    page.dispatch_event(panel + "[data-r='2'][data-c='2']", "pointerup")
    x = np.stack([images[names[0]], images[names[3]]])  # (C_in, 8, 8)
    for r, c in ((2, 2), (5, 7), (9, 4)):
        x[1, r - 2, c - 2] = 0.75
    drawn = values(page, panel).reshape(12, 12)[2:10, 2:10]
    np.testing.assert_allclose(drawn, x[1], atol=1e-12)
    w = np.array([[parse_kernel(t) for t in row] for row in texts])  # (3, 2, 3, 3)
    ref = conv_reference(x, w, np.array(biases), stride=2, padding=2, dilation=2)
    got = values(page, f"{root} .lmho-out .lmho-cell").reshape(ref.shape)
    close("convolution", got, ref)
    # the chosen position: per-channel sums plus the bias are the output value there
    set_value(page, f"{root} input[aria-label='position']", 5)
    total = values(page, f"{root} .lmho-total")[0]
    sums = values(page, f"{root} .lmho-chsum-v")
    close("convolution", total, ref[0].flat[5])
    close("convolution", sums.sum() + biases[0], total)
    assert "floor((8 + 2*2 - 2*(3 - 1) - 1) / 2) + 1 = 4" in page.inner_text(root)
    no_errors(page, root)


def test_conv_explorer_learned_kernel_any_k_and_errors(page):
    root = show(page, conv_explorer(padding=0))
    page.select_option(f"{root} select[aria-label='preset kernel 0 0']", "DigitsCNN conv1 #3")
    text = page.input_value(f"{root} input.lmho-kernel[data-o='0'][data-c='0']")
    kernel, bias = learned_kernels()["DigitsCNN conv1 #3"]
    np.testing.assert_allclose(parse_kernel(text), kernel, atol=5e-5)  # shown and used to 4 decimals
    assert abs(float(page.input_value(f"{root} input.lmho-bias[data-o='0']")) - bias) < 5e-5
    x = explorer_images()[list(explorer_images())[0]][None]
    ref = conv_reference(x, parse_kernel(text)[None, None], [round(bias, 4)])
    close("convolution", values(page, f"{root} .lmho-out .lmho-cell").reshape(ref.shape), ref)
    five = "1 0 0 0 1; 0 1 0 1 0; 0 0 -4 0 0; 0 1 0 1 0; 1 0 0 0 1"  # any K x K
    page.fill(f"{root} input.lmho-kernel[data-o='0'][data-c='0']", five)
    ref = conv_reference(x, parse_kernel(five)[None, None], [round(bias, 4)])
    assert ref.shape == (1, 4, 4)
    close("convolution", values(page, f"{root} .lmho-out .lmho-cell").reshape(ref.shape), ref)
    page.fill(f"{root} input.lmho-kernel[data-o='0'][data-c='0']", "1 2; 3")
    assert "must be square" in page.get_attribute(root, "data-error")
    page.fill(f"{root} input.lmho-kernel[data-o='0'][data-c='0']", five)
    set_value(page, f"{root} input[aria-label='dilation']", 3)  # span 13 > 8: a message, not an exception
    assert "larger than the padded input" in page.get_attribute(root, "data-error")
    assert page.lmho_errors == []


# ---------------------------------------------------------------- gating

@pytest.fixture(scope="module")
def gated_models():
    torch.manual_seed(0)
    return {"GRU": SequenceRegressor("gru", 2, 16), "LSTM": SequenceRegressor("lstm", 2, 16)}


def _step_table(page, root):
    rows = page.eval_on_selector_all(f"{root} .lmho-steps tr[data-unit]", """trs => trs.map(tr => [
        +tr.getAttribute('data-unit'),
        Array.from(tr.querySelectorAll('td')).map(td => [td.getAttribute('data-panel'), parseFloat(td.getAttribute('data-v'))])])""")
    return {u: dict(cells) for u, cells in rows}


@pytest.mark.parametrize("name", ["GRU", "LSTM"])
def test_gating_explorer_equals_the_book_cells_on_a_typed_sequence(page, gated_models, name):
    X, y = make_sequence_task("adding", 2, 20, seed=3)
    root = show(page, gating_explorer(gated_models, {"test 0": (X[0], y[0].item())}))
    set_value(page, f"{root} select[aria-label='model']", name, "change")
    typed = "31[7]2 0 5[4]8 6 1 9 2 4 4"
    page.fill(f"{root} input[aria-label='typed']", typed)
    x_seq, target = parse_adding_sequence(typed)
    model = gated_models[name]
    ref = gate_trace(model, x_seq)
    close("gating", values(page, f"{root} .lmho-pred")[0], ref.view.prediction)
    assert abs(values(page, f"{root} .lmho-target")[0] - target) < 1e-12
    page.fill(f"{root} input[aria-label='units shown']", "0 5 11")
    for t in (0, 4, len(x_seq) - 1):
        set_value(page, f"{root} input[aria-label='time step t']", t)
        table = _step_table(page, root)
        assert sorted(table) == [0, 5, 11]
        for u, cells in table.items():
            for panel, v in cells.items():
                want = ref.view.keep[t, u] if panel == "keep" else ref.view.panels[panel][t, u]
                close("gating", v, want)
        close("gating", values(page, f"{root} .lmho-readout")[0], ref.readout[t])
    # the reference is the chapter's trace_model (float32) in float64
    tm = trace_model(model, x_seq)
    assert all(np.abs(tm.panels[k] - ref.view.panels[k]).max() < 1e-5 for k in tm.panels)
    # clamp: units 0 and 5 forced to forget from step 3; compare the clamped run
    page.check(f"{root} input[aria-label='clamp']")
    page.fill(f"{root} input[aria-label='units']", "0 5")
    value = 1.0 if name == "GRU" else 0.0
    set_value(page, f"{root} input[aria-label='gate value']", value)
    page.fill(f"{root} input[aria-label='from step']", "3")
    clamped = gate_trace(model, x_seq, clamp_units=(0, 5), clamp_value=value, clamp_from=3)
    close("gating", values(page, f"{root} .lmho-pred-clamped")[0], clamped.view.prediction)
    set_value(page, f"{root} input[aria-label='time step t']", 6)
    for u, cells in _step_table(page, root).items():
        for panel, v in cells.items():
            want = clamped.view.keep[6, u] if panel == "keep" else clamped.view.panels[panel][6, u]
            close("gating", v, want)
    gate = "update z" if name == "GRU" else "forget f"
    assert _step_table(page, root)[5][gate] == value
    page.fill(f"{root} input[aria-label='typed']", "1 2 [3")
    assert "cannot read" in page.get_attribute(root, "data-error")
    assert page.lmho_errors == []


def test_gating_holders_match_python(page, gated_models):
    X, y = make_sequence_task("adding", 1, 25, seed=5)
    root = show(page, gating_explorer(gated_models, {"s": (X[0], y[0].item())}, default_sequence="s"))
    ref = gate_trace(gated_models["GRU"], X[0])
    shown = page.input_value(f"{root} input[aria-label='units']")  # the clamp's default units: the holders
    assert [int(u) for u in shown.split()] == ref.holders
    no_errors(page, root)


# ---------------------------------------------------------------- attention

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return TinyTransformer(TinyTransformerConfig(vocab_size=10, max_len=10, d_model=32, num_heads=4, d_ff=64)).eval()


def _grid(page, root, panel, T):
    return values(page, f"{root} .lmho-attpanel[data-panel='{panel}'] .lmho-cell").reshape(T, T)


def test_attention_explorer_runs_the_tiny_transformer(page, tiny):
    root = show(page, attention_explorer(tiny, task="reverse"))
    page.fill(f"{root} input[data-panel='input A']", "3 1 4 1 5 9 2 6")
    page.fill(f"{root} input[data-panel='input B']", "907")
    a, b = [3, 1, 4, 1, 5, 9, 2, 6], [9, 0, 7]
    logits, maps = tiny_transformer_forward(tiny, a)
    close("attention (tiny Transformer)", _grid(page, root, "A", 8), maps[0, 0])
    with torch.no_grad():
        lg, mp = tiny.forward_with_attention(torch.tensor([a]))
    assert np.abs(maps[1] - mp[1][0].numpy()).max() < 1e-5 and np.abs(logits - lg[0].numpy()).max() < 1e-4
    set_value(page, f"{root} input[aria-label='layer']", 1)
    set_value(page, f"{root} select[aria-label='head']", 2, "change")
    set_value(page, f"{root} input[aria-label='temperature τ']", 0.3)
    set_value(page, f"{root} input[aria-label='d_k in the scale 1/√d_k']", 3)
    tau = 10 ** 0.3
    for panel, ids in (("A", a), ("B", b)):
        logits, maps = tiny_transformer_forward(tiny, ids, temperature=tau, d_k=3)
        close("attention (tiny Transformer)", _grid(page, root, panel, len(ids)), maps[1, 2])
        pred = page.eval_on_selector_all(f"{root} .lmho-attpanel[data-panel='{panel}'] .lmho-pred td[data-pos]",
                                         "tds => tds.map(t => +t.textContent)")
        assert pred == logits.argmax(-1).tolist()
    set_value(page, f"{root} select[aria-label='head']", "mean", "change")
    set_value(page, f"{root} input[aria-label='query']", 2)
    logits, maps = tiny_transformer_forward(tiny, b, temperature=tau, d_k=3)
    row = values(page, f"{root} .lmho-attpanel[data-panel='B'] .lmho-w")
    close("attention (tiny Transformer)", row, maps[1].mean(0)[2])
    page.fill(f"{root} input[data-panel='input A']", "12345678901")
    assert "at most 10 digits" in page.get_attribute(root, "data-error")
    assert page.lmho_errors == []


def test_qkv_toy_output_is_the_convex_combination(page):
    root = show(page, qkv_explorer())
    set_value(page, f"{root} input[aria-label='q angle']", 100)
    set_value(page, f"{root} input[aria-label='q length']", 3.1)
    set_value(page, f"{root} input[aria-label='temperature τ']", -0.25)
    lengths = page.query_selector_all(f"{root} input[aria-label='length']")
    lengths[0].evaluate("e => { e.value = 3.9; e.dispatchEvent(new Event('input')); }")
    page.fill(f"{root} input[aria-label='v1 = (']", "-2.5")
    ref = qkv_toy(100, 3.1, (0, 70, 150), (3.9, 2.0, 2.0), ((3, 0.5), (-2.5, 3), (-2.5, -2)), temperature=10 ** -0.25)
    for q, want in (("weight", ref.weights), ("score", ref.scores)):
        close("Q/K/V toy", values(page, f"{root} td[data-q='{q}']"), want)
    got = [values(page, f"{root} .lmho-ox")[0], values(page, f"{root} .lmho-oy")[0]]
    close("Q/K/V toy", got, ref.output)
    assert abs(ref.weights.sum() - 1) < 1e-12 and (ref.weights >= 0).all()
    no_errors(page, root)


def test_dk_explorer_reproduces_the_saturation_measurement(page):
    root = show(page, dk_explorer())
    set_value(page, f"{root} input[aria-label='d_k = 2^']", 9)
    stats = saturation_stats(512)
    for mode in ("scaled", "unscaled"):
        for q in ("std", "max_weight", "entropy"):
            got = values(page, f"{root} tr[data-mode='{mode}'] td[data-q='{q}']")[0]
            close("d_k measurement (relative)", got, stats[mode][q], scale=max(1.0, abs(stats[mode][q])))
    assert stats["unscaled"]["max_weight"] > 0.9 > 0.5 > stats["scaled"]["max_weight"]
    no_errors(page, root)


def test_stored_maps_explorer_shows_the_stored_weights(page):
    g = torch.Generator().manual_seed(0)
    tokens = ["[CLS]", "the", "animal", "was", "tired", ".", "[SEP]"]
    maps = {f"sentence {i}": AttentionMaps(tokens[: 5 + i], torch.softmax(torch.randn(3, 4, 5 + i, 5 + i, generator=g), -1),
                                           "m") for i in range(3)}
    ex = stored_attention_explorer({"enc": maps}, layers={"enc": [0, 2]},
                                   defaults={"enc": {"a": 1, "b": 2, "query_token": "was"}})
    root = show(page, ex)
    assert page.eval_on_selector(f"{root} select[aria-label='query in A']", "e => e.value") == "3"
    set_value(page, f"{root} input[aria-label='layer']", 1)  # the second stored layer: model layer 2
    set_value(page, f"{root} select[aria-label='head']", 3, "change")
    m_a, m_b = list(maps.values())[1:]
    close("stored attention maps", _grid(page, root, "A", 6), m_a.weights[2, 3].numpy())
    close("stored attention maps", _grid(page, root, "B", 7), m_b.weights[2, 3].numpy())
    set_value(page, f"{root} select[aria-label='head']", "mean", "change")
    close("stored attention maps", _grid(page, root, "A", 6), m_a.weights[2].mean(0).numpy())
    assert "bidirectional encoder" in page.inner_text(root) and "causal" not in page.inner_text(f"{root} .lmho-row")
    no_errors(page, root)


# ---------------------------------------------------------------- speed

def _times(page, root, selector, vals, event="input", repeat=3) -> list[float]:
    """Milliseconds per update: from the previous value to the next one, fire the event and force the
    layout; each transition is timed ``repeat`` times and the fastest kept (as ``timeit`` does), so that
    another process taking the CPU for a moment does not count as the explorer's cost."""
    return page.eval_on_selector(selector, """(el, a) => {
        const root = el.closest('.lmho-explorer'), out = [];
        let prev = el.value;
        for (const v of a[0]) {
            let best = Infinity;
            for (let k = 0; k < a[2]; k++) {
                el.value = prev;
                el.dispatchEvent(new Event(a[1], {bubbles: true}));
                void root.offsetHeight;
                el.value = v;
                const t0 = performance.now();
                el.dispatchEvent(new Event(a[1], {bubbles: true}));
                void root.offsetHeight; void document.body.getBoundingClientRect();
                best = Math.min(best, performance.now() - t0);
            }
            out.push(best);
            prev = v;
        }
        return out;
    }""", [[str(v) for v in vals], event, repeat])


def _check_speed(name, times):
    t = np.array(times)
    p50, p95 = float(np.percentile(t, 50)), float(np.percentile(t, 95))
    TIMINGS[name] = {"n": len(t), "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "max_ms": round(float(t.max()), 2)}
    print(f"{name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms over {len(t)} updates")
    assert p95 < 50, TIMINGS[name]


def test_updates_render_in_under_50_ms(page, gated_models, tiny):
    root = show(page, conv_explorer(c_in=3, c_out=4))
    times = _times(page, root, f"{root} input[aria-label='position']", [i % 64 for i in range(1, 61)])
    kernel = f"{root} input.lmho-kernel[data-o='1'][data-c='2']"
    times += _times(page, root, kernel, ["1", "1 ", "1 0", "1 0 -", "1 0 -1", "1 0 -1;", "1 0 -1; 2", "1 0 -1; 2 0",
                                         "1 0 -1; 2 0 -2;", "1 0 -1; 2 0 -2; 1 0 -1"] * 4)
    _check_speed("convolution", times)

    X, y = make_sequence_task("adding", 1, 30, seed=0)
    big = {"GRU": SequenceRegressor("gru", 2, 32), "LSTM": SequenceRegressor("lstm", 2, 32)}
    root = show(page, gating_explorer(big, {"test 0": (X[0], y[0].item())}, default_sequence="test 0"))
    times = _times(page, root, f"{root} input[aria-label='time step t']", [i % 30 for i in range(1, 61)])
    seq = "31[7]2 0 5[4]8 6 1 9 2 4 4 1 2 3 5 5 5 9 0 1 2 3"
    set_value(page, f"{root} select[aria-label='sequence']", "typed", "change")
    times += _times(page, root, f"{root} input[aria-label='typed']", [seq[:k] for k in range(14, len(seq) + 1)])
    _check_speed("gating", times)

    root = show(page, attention_explorer(tiny, task="reverse"))
    times = _times(page, root, f"{root} input[aria-label='temperature τ']", [round(-1 + 0.05 * i, 2) for i in range(41)])
    times += _times(page, root, f"{root} input[data-panel='input A']", ["3", "3 1", "3 1 4", "3 1 4 1", "3 1 4 1 5",
                                                                        "3 1 4 1 5 9", "3 1 4 1 5 9 2", "3 1 4 1 5 9 2 6"] * 3)
    _check_speed("attention (tiny Transformer)", times)
    assert page.lmho_errors == []


# ---------------------------------------------------------------- the stored notebook outputs

def _stored_explorers(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            html = "".join(o.get("data", {}).get("text/html", ""))
            if "lmho-explorer" in html:
                out.append(html)
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_explorers_stored_in_the_chapters_carry_the_current_scripts(nb):
    # the book shows the stored outputs: after a change to utils/resources/widgets/*.js, re-execute
    # the chapter (tools/nbtools.py execute) so that the book ships the same code the tests check
    from utils.widgets.browser import js_source

    for html in _stored_explorers(ROOT / nb):
        kind = html.split('data-kind="', 1)[1].split('"', 1)[0]
        script = {"conv": "conv", "gating": "gating"}.get(kind, "attention")
        assert js_source("core") in html and js_source(script) in html, f"{nb}: stored {kind} explorer is out of date"


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_explorers_stored_in_the_chapters_start_without_errors(page, nb):
    outputs = _stored_explorers(ROOT / nb)
    if not outputs:
        pytest.skip(f"{nb} stores no in-browser explorer output")
    page.lmho_errors.clear()
    page.set_content("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "\n".join(outputs) + "</body></html>")
    n = len(outputs)
    page.wait_for_function(f"document.querySelectorAll('.lmho-explorer[data-ready=\"1\"]').length >= {n}")
    assert page.eval_on_selector_all(".lmho-explorer[data-error]", "els => els.map(e => e.getAttribute('data-error'))") == []
    assert page.lmho_errors == []
    assert math.isfinite(sum(page.evaluate("Array.from(document.querySelectorAll('.lmho-explorer')).map(r => r.lmhoTimes.length)")))


# ---------------------------------------------------------------- JupyterLab: the same output, run in a real kernel

@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server on localhost serving a notebook that displays two explorers."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import nbformat

    from browser import free_port

    require_browser()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from utils.widgets.conv import conv_explorer\nconv_explorer(c_out=2)"),
                nbformat.v4.new_code_cell("from utils.widgets.attention import qkv_explorer\nqkv_explorer()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "explorers.ipynb")
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = free_port(), "lmho-explorers"
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail("JupyterLab exited:\n" + (tmp_path / "server.log").read_text()[-2000:])
                    time.sleep(0.5)
            else:
                pytest.fail("JupyterLab did not start in 120 s")
            yield f"{base}/lab/tree/explorers.ipynb?token={token}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_explorers_run_in_jupyterlab(page, lab):
    # one browser per module: a second sync Playwright cannot start beside the page fixture's
    pg = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(lab)
    pg.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    try:  # a fresh machine may ask which kernel to start
        pg.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=15_000)
        pg.click(".jp-Dialog .jp-mod-accept")
    except Exception:
        pass
    pg.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    pg.click(".lm-MenuBar-itemLabel:text-is('Run')")
    pg.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    pg.wait_for_function("document.querySelectorAll(\".jp-OutputArea-output .lmho-explorer[data-ready='1']\").length >= 2",
                         timeout=300_000, polling=1000)
    conv = ".jp-OutputArea-output .lmho-explorer[data-kind=conv]"
    set_value(pg, f"{conv} input[aria-label='stride']", 2)  # 8x8, K 3, padding 1, stride 2 -> 4x4 per channel
    cells = pg.eval_on_selector_all(f"{conv} .lmho-out .lmho-cell", "els => els.length")
    x = explorer_images()[list(explorer_images())[0]][None]
    ref = conv_reference(x, np.array([[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]] * 2), [0, 0], stride=2, padding=1)
    got = values(pg, f"{conv} .lmho-out .lmho-cell").reshape(ref.shape)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "jupyterlab_explorers.png"))
    failed = pg.eval_on_selector_all(".lmho-explorer[data-error]", "els => els.map(e => e.getAttribute('data-error'))")
    pg.close()
    assert cells == 2 * 16 and np.abs(got - ref).max() < TOL
    assert failed == [] and errors == []
