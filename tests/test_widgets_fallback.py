"""A live widget paired with its kernel-free counterpart (utils.widgets.fallback)."""

import ipywidgets as w
import matplotlib.pyplot as plt
import pytest
import yaml

from utils.widgets.fallback import LIVE_NOTE, live_with_fallback

from browser import ROOT


def _fig():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_bundle_carries_the_widget_and_the_counterpart():
    slider = w.IntSlider(3)
    obj = live_with_fallback(slider, _fig(), alt="a falling line")
    bundle = obj._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == slider.model_id
    html = bundle["text/html"]
    assert html.count("<img") == 1 and 'alt="a falling line"' in html and "data:image/png;base64," in html
    assert LIVE_NOTE in html
    assert obj.widget is slider


def test_figures_are_closed_and_sized_for_high_resolution_screens():
    fig = _fig()
    html = live_with_fallback(w.IntSlider(), [fig, _fig()], alt=["first", "second"])._repr_mimebundle_()["text/html"]
    assert html.count("<img") == 2
    assert not plt.fignum_exists(fig.number)  # not drawn a second time as an ordinary output
    width = int(html.split('width="')[1].split('"')[0])
    assert width < 3 * 90 * 1.2  # shown at 1x size while the PNG holds 2x the pixels


@pytest.mark.parametrize("kwargs, exc, phrase", [
    ({"widget": "not a widget", "fallback": "<b>x</b>", "alt": "x"}, TypeError, "widget"),
    ({"widget": None, "fallback": "<b>x</b>", "alt": "x"}, TypeError, "widget"),
    ({"fallback": 3, "alt": "x"}, TypeError, "fallback"),
    ({"fallback": [], "alt": "x"}, TypeError, "fallback"),
    ({"fallback": "   ", "alt": "x"}, ValueError, "fallback_html"),
    ({"alt": ["one", "two"]}, ValueError, "alt"),
    ({"alt": ""}, ValueError, "alt"),
])
def test_bad_input_is_named(kwargs, exc, phrase):
    args = {"widget": w.IntSlider(), "fallback": _fig(), "alt": "x"} | kwargs
    with pytest.raises(exc, match=phrase):
        live_with_fallback(args.pop("widget"), args.pop("fallback"), **args)


def test_book_prefers_the_counterpart_over_the_widget_view():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    overrides = {(b, m): p for b, m, p in cfg["nb_mime_priority_overrides"]}
    from myst_nb.core.render import base_render_priority

    html = base_render_priority()["html"] | {m: p for (b, m), p in overrides.items() if b == "html"}
    assert html["text/html"] < html["application/vnd.jupyter.widget-view+json"] < html["text/plain"]


@pytest.mark.parametrize("builder, phrase", [
    ("utils.widgets.optim:make_optimizer_race_widget", "paths of SGD, momentum and Adam"),
    ("utils.widgets.cost:make_cost_widget", "The presets"),
])
def test_builders_display_their_kernel_free_counterpart(monkeypatch, builder, phrase):
    import importlib

    import IPython.display

    from utils.widgets.fallback import LiveWithFallback

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    module, name = builder.split(":")
    ui = getattr(importlib.import_module(module), name)()
    [obj] = shown
    assert isinstance(obj, LiveWithFallback) and obj.widget is ui
    bundle = obj._repr_mimebundle_()
    assert phrase in bundle["text/html"] and LIVE_NOTE in bundle["text/html"]
