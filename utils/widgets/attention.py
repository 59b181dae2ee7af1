"""Attention explorer: see which tokens each query attends to, per layer and head.

Explained in chapter 3 ("Attention and the Transformer"). Three layers (DESIGN.md):

- compute, pure and tested: :func:`tiny_model_attention` and :func:`encoder_attention`
  run a model once and return :class:`AttentionMaps` (tokens + weights ``(L, nh, T, T)``);
  :func:`attention_view` picks a layer, head and query and re-tempers the weights with
  :func:`utils.attention.retemper` (no model call, so a slider update costs well under a ms);
  :func:`utils.attention.toy_qk_attention` drives the Q/K toy;
- views: :func:`plot_attention_view` and :func:`plot_qk_toy` draw a result, never mutate it;
- builders: :func:`make_attention_widget` (the tiny model or a real pretrained encoder such as
  all-MiniLM-L6-v2, the learner's own sentence or digit sequence) and
  :func:`make_qk_toy_widget`, wired with ``ipywidgets.interactive_output``.

Shapes: L layers, nh heads, T tokens, K keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils.attention import retemper, toy_qk_attention

__all__ = [
    "AttentionMaps",
    "AttentionView",
    "tiny_model_attention",
    "parse_digits",
    "encoder_attention",
    "attention_view",
    "plot_attention_view",
    "QKToy",
    "qk_toy",
    "plot_qk_toy",
    "make_attention_widget",
    "make_qk_toy_widget",
]


@dataclass(frozen=True)
class AttentionMaps:
    """Attention weights of one input: ``tokens`` (T strings) and ``weights`` ``(L, nh, T, T)``."""

    tokens: list[str]
    weights: torch.Tensor
    source: str


@dataclass(frozen=True)
class AttentionView:
    """One head's (re-tempered) matrix ``(T, T)`` and the row of the selected query ``(T,)``."""

    tokens: list[str]
    matrix: np.ndarray
    row: np.ndarray
    layer: int
    head: int | None  # None: the mean over heads
    query: int
    temperature: float
    causal: bool
    source: str


@torch.no_grad()
def tiny_model_attention(model: torch.nn.Module, idx: torch.Tensor | list[int]) -> AttentionMaps:
    """Run a :class:`utils.transformer.TinyTransformer` on one sequence ``(T,)`` of token ids."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    if idx.ndim != 1 or idx.numel() == 0:
        raise ValueError(f"idx must be one non-empty sequence of token ids (T,), got shape {tuple(idx.shape)}")
    was = model.training
    model.eval()
    _, maps = model.forward_with_attention(idx[None])  # list of L tensors (1, nh, T, T)
    model.train(was)
    return AttentionMaps([str(int(t)) for t in idx], torch.stack([m[0] for m in maps]).float(), "tiny model")


def parse_digits(text: str) -> list[int]:
    """``"3 1 4 1 5"`` or ``"31415"`` -> ``[3, 1, 4, 1, 5]``; anything else raises ``ValueError``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    chars = [c for c in text if not c.isspace() and c != ","]
    if not chars or not all(c.isdigit() for c in chars):
        raise ValueError(f"text must be digits 0-9 such as '3 1 4 1 5', got {text!r}")
    return [int(c) for c in chars]


@torch.no_grad()
def encoder_attention(text: str, tokenizer, model, *, max_tokens: int = 32) -> AttentionMaps:
    """Attention of a Hugging Face encoder loaded with ``output_attentions=True`` on ``text``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    batch = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)
    out = model(**batch)
    if out.attentions is None:
        raise ValueError("the model returned no attentions: load it with output_attentions=True "
                         "(utils.pretrained.load_pretrained_encoder(output_attentions=True))")
    weights = torch.stack([a[0] for a in out.attentions]).float()  # (L, nh, T, T)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return AttentionMaps(list(tokens), weights, getattr(model.config, "_name_or_path", "encoder").split("/")[-1] or "encoder")


def attention_view(maps: AttentionMaps, *, layer: int = 0, head: int | None = 0, query: int = 0,
                   temperature: float = 1.0, causal: bool = False) -> AttentionView:
    """Pick ``layer``, ``head`` (``None`` = mean over heads) and ``query``; re-temper and mask."""
    L, nh, T, _ = maps.weights.shape
    for name, value, n in (("layer", layer, L), ("query", query, T)) + ((("head", head, nh),) if head is not None else ()):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise ValueError(f"{name} must be an int in [0, {n}), got {value!r}")
    w = maps.weights[layer] if head is None else maps.weights[layer, head][None]  # (nh or 1, T, T)
    m = retemper(w, temperature, causal=causal).mean(0).numpy()  # (T, T)
    return AttentionView(maps.tokens, m, m[query].copy(), layer, head, query, float(temperature), causal, maps.source)


def plot_attention_view(view: AttentionView, ax=None):
    """Heatmap of ``view.matrix`` with the query row outlined; with a pair of axes (or none),
    also a bar chart of how much the query attends to each token. Returns the axes."""
    if ax is None:
        ax = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})[1]
    axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    T = len(view.tokens)
    hm = axes[0]
    hm.imshow(view.matrix, cmap="viridis", vmin=0, vmax=max(1e-9, float(view.matrix.max())), aspect="auto")
    hm.grid(False)
    hm.set_xticks(range(T), labels=view.tokens, rotation=90, fontsize=8)
    hm.set_yticks(range(T), labels=view.tokens, fontsize=8)
    hm.add_patch(plt.Rectangle((-0.5, view.query - 0.5), T, 1, fill=False, ec="red", lw=2))
    hm.set_xlabel("key (attended to)")
    hm.set_ylabel("query")
    head = "mean of heads" if view.head is None else f"head {view.head}"
    extra = (f", T={view.temperature:g}" if view.temperature != 1 else "") + (", causal" if view.causal else "")
    hm.set_title(f"{view.source}: layer {view.layer}, {head}{extra}", fontsize=10)
    if len(axes) > 1:
        bar = axes[1]
        bar.bar(range(T), view.row, color="tab:red")
        bar.set_xticks(range(T), labels=view.tokens, rotation=90, fontsize=8)
        bar.set_ylim(0, 1)
        bar.set_title(f"query {view.query} ({view.tokens[view.query]!r}) attends to", fontsize=10)
    return ax


@dataclass(frozen=True)
class QKToy:
    """The Q/K toy: a 2-D ``query`` ``(2,)``, ``keys`` ``(K, 2)``, their scores and weights ``(K,)``."""

    query: np.ndarray
    keys: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    scale: float


def qk_toy(q_angle: float = 20.0, q_length: float = 2.0, key_angles=(0.0, 70.0, 150.0),
           key_length: float = 2.0, *, temperature: float = 1.0) -> QKToy:
    """Query and keys from angles (degrees) and lengths; scale = 1 / (sqrt(d) * temperature), d = 2."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    unit = lambda deg: torch.tensor([math.cos(math.radians(deg)), math.sin(math.radians(deg))],  # noqa: E731
                                    dtype=torch.float64)
    q = q_length * unit(q_angle)  # (2,)
    keys = torch.stack([key_length * unit(a) for a in key_angles])  # (K, 2)
    scale = 1.0 / (math.sqrt(2) * temperature)
    scores, weights = toy_qk_attention(q, keys, scale=scale)
    return QKToy(q.numpy(), keys.numpy(), scores.numpy(), weights.numpy(), scale)


def plot_qk_toy(toy: QKToy, ax=None):
    """Arrows for the query (black) and keys (coloured, width ~ weight), and a bar chart of weights."""
    if ax is None:
        ax = plt.subplots(1, 2, figsize=(9, 4))[1]
    arrows, bars = ax
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lim = 1.15 * max(np.abs(toy.keys).max(), np.abs(toy.query).max(), 1.0)
    for j, k in enumerate(toy.keys):
        arrows.annotate("", xy=k, xytext=(0, 0), arrowprops=dict(
            arrowstyle="->", color=colors[j % len(colors)], lw=1 + 6 * toy.weights[j]))
        arrows.text(*(k * 1.08), f"k{j}", color=colors[j % len(colors)], ha="center")
    arrows.annotate("", xy=toy.query, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color="black", lw=2.5))
    arrows.text(*(toy.query * 1.08), "q", ha="center", fontweight="bold")
    arrows.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title="query and keys in 2-D")
    bars.bar([f"k{j}" for j in range(len(toy.weights))], toy.weights, color=colors[: len(toy.weights)])
    for j, (s, w) in enumerate(zip(toy.scores, toy.weights)):
        bars.text(j, w + 0.02, f"{w:.2f}\n(score {s:.2f})", ha="center", fontsize=8)
    bars.set(ylim=(0, 1.15), title=f"softmax(scale · q·k), scale = {toy.scale:.3f}")
    return ax


def _error_safe(out, fn):
    def wrapped(**kwargs):
        try:
            fn(**kwargs)
        except Exception as exc:  # shown to the learner instead of a silent dead widget
            out.outputs = ()
            out.append_stdout(f"{type(exc).__name__}: {exc}\n")
    return wrapped


def make_attention_widget(model, tokenizer=None, *, text: str | None = None, presets: dict[str, str] | None = None):
    """The attention explorer.

    Args:
        model: a :class:`utils.transformer.TinyTransformer` (then ``text`` is digits such as
            ``"3 1 4 1 5"``) or a Hugging Face encoder loaded with ``output_attentions=True``
            together with its ``tokenizer`` (then ``text`` is any sentence).
        presets: named inputs for the drop-down (e.g. sequences of the chapter's task).
    """
    import ipywidgets as W
    from IPython.display import display

    hf = tokenizer is not None
    default = text or ("The animal didn't cross the street because it was too tired." if hf else "3 1 4 1 5 9 2 6")
    cache: dict[str, AttentionMaps] = {}

    def maps_for(s: str) -> AttentionMaps:
        if s not in cache:
            cache[s] = encoder_attention(s, tokenizer, model) if hf else tiny_model_attention(model, parse_digits(s))
        return cache[s]

    first = maps_for(default)
    L, nh, T, _ = first.weights.shape
    box = W.Text(value=default, description="input", continuous_update=False, layout=W.Layout(width="60%"))
    preset = W.Dropdown(options={"(your own input)": "", **(presets or {})}, description="preset")
    layer = W.IntSlider(0, 0, L - 1, description="layer")
    head = W.Dropdown(options=[(f"head {h}", h) for h in range(nh)] + [("mean of heads", -1)], description="head")
    query = W.IntSlider(0, 0, T - 1, description="query")
    temp = W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="temperature")
    causal = W.Checkbox(False, description="causal mask")
    errors = W.Output()

    def on_preset(change):
        if change["new"]:
            box.value = change["new"]
    preset.observe(on_preset, names="value")

    def draw(text, layer, head, query, temperature, causal):
        errors.outputs = ()
        maps = maps_for(text)
        n = len(maps.tokens)
        if query >= n:  # the new input is shorter than the old one
            query = n - 1
        view = attention_view(maps, layer=layer, head=None if head == -1 else head, query=query,
                              temperature=temperature, causal=causal)
        plot_attention_view(view)
        plt.show()

    def sync_query(change):
        try:
            query.max = len(maps_for(change["new"]).tokens) - 1
        except Exception:
            pass
    box.observe(sync_query, names="value")
    plot = W.interactive_output(_error_safe(errors, draw), dict(text=box, layer=layer, head=head, query=query,
                                                                temperature=temp, causal=causal))
    ui = W.VBox([W.HBox([box, preset]), W.HBox([layer, head]), W.HBox([query, temp, causal]), errors, plot])
    display(ui)
    return ui


def make_qk_toy_widget():
    """Q/K toy: move a 2-D query and three keys with sliders and watch the softmax weights."""
    import ipywidgets as W
    from IPython.display import display

    qa = W.FloatSlider(20, min=-180, max=180, step=5, description="q angle")
    ql = W.FloatSlider(2.0, min=0.0, max=4.0, step=0.1, description="q length")
    ks = [W.FloatSlider(a, min=-180, max=180, step=5, description=f"k{j} angle") for j, a in enumerate((0, 70, 150))]
    kl = W.FloatSlider(2.0, min=0.1, max=4.0, step=0.1, description="key length")
    temp = W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="temperature")
    errors = W.Output()

    def draw(qa, ql, k0, k1, k2, kl, temperature):
        errors.outputs = ()
        plot_qk_toy(qk_toy(qa, ql, (k0, k1, k2), kl, temperature=temperature))
        plt.show()
    plot = W.interactive_output(_error_safe(errors, draw), dict(qa=qa, ql=ql, k0=ks[0], k1=ks[1], k2=ks[2],
                                                                kl=kl, temperature=temp))
    ui = W.VBox([W.HBox([qa, ql, temp]), W.HBox(ks + [kl]), errors, plot])
    display(ui)
    return ui
