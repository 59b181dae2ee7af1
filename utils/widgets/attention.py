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
  :func:`make_qk_toy_widget`, wired with ``ipywidgets.interactive_output`` (a live kernel);
- in-browser explorers, the live view in every surface including the HTML book
  (``utils/resources/widgets/attention.js``, Python references in
  :mod:`utils.widgets.reference`): :func:`attention_explorer` runs the tiny Transformer's
  exported weights on the reader's digits, :func:`qkv_explorer` is the Q/K/V toy with the
  output as a convex combination of the values, :func:`dk_explorer` the d_k measurement, and
  :func:`stored_attention_explorer` shows maps of real models precomputed for a set of
  sentences (:func:`attention_maps_for_texts`).

Shapes: L layers, nh heads, T tokens, K keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils.attention import retemper, toy_qk_attention
from utils.widgets.browser import BrowserExplorer, encode_f32, encode_unit_u16

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
    "attention_explorer",
    "qkv_explorer",
    "dk_explorer",
    "attention_maps_for_texts",
    "stored_attention_explorer",
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
    """The kernel-side attention explorer (a live Python kernel; the in-browser
    :func:`attention_explorer` and :func:`stored_attention_explorer` work everywhere).

    It runs the model on any input typed in the kernel, which the browser cannot do for a real
    pretrained encoder. The temperature re-normalises the weights of the layer shown
    (:func:`utils.attention.retemper`: exact for that layer, the model is not re-run). There is no
    causal-mask toggle: both models are bidirectional encoders, and masking their weights after the
    fact would not show what a causal model attends to.

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
    errors = W.Output()

    def on_preset(change):
        if change["new"]:
            box.value = change["new"]
    preset.observe(on_preset, names="value")

    def draw(text, layer, head, query, temperature):
        errors.outputs = ()
        maps = maps_for(text)
        n = len(maps.tokens)
        if query >= n:  # the new input is shorter than the old one
            query = n - 1
        view = attention_view(maps, layer=layer, head=None if head == -1 else head, query=query,
                              temperature=temperature)
        plot_attention_view(view)
        plt.show()

    def sync_query(change):
        try:
            query.max = len(maps_for(change["new"]).tokens) - 1
        except Exception:
            pass
    box.observe(sync_query, names="value")
    plot = W.interactive_output(_error_safe(errors, draw), dict(text=box, layer=layer, head=head, query=query,
                                                                temperature=temp))
    ui = W.VBox([W.HBox([box, preset]), W.HBox([layer, head]), W.HBox([query, temp]), errors, plot])
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


def _export_tiny_transformer(model) -> dict:
    """A :class:`utils.transformer.TinyTransformer`'s weights for ``attention.js`` (exact float32)."""
    from utils.transformer import TinyTransformer

    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a utils.transformer.TinyTransformer, got {type(model).__name__}")
    cfg = model.config
    with torch.no_grad():
        pos = model.pos(torch.zeros(1, cfg.max_len, cfg.d_model))[0]  # (max_len, C): what the encoding adds
    blocks = []
    for b in model.blocks:
        a = b.self_attn
        blocks.append({"ln1_w": encode_f32(b.norm1.weight), "ln1_b": encode_f32(b.norm1.bias),
                       "in_w": encode_f32(a.in_proj_weight), "in_b": encode_f32(a.in_proj_bias),
                       "out_w": encode_f32(a.out_proj.weight), "out_b": encode_f32(a.out_proj.bias),
                       "ln2_w": encode_f32(b.norm2.weight), "ln2_b": encode_f32(b.norm2.bias),
                       "l1_w": encode_f32(b.linear1.weight), "l1_b": encode_f32(b.linear1.bias),
                       "l2_w": encode_f32(b.linear2.weight), "l2_b": encode_f32(b.linear2.bias)})
    norm = ({"w": encode_f32(model.norm.weight), "b": encode_f32(model.norm.bias)}
            if isinstance(model.norm, torch.nn.LayerNorm) else None)
    return {"V": cfg.vocab_size, "C": cfg.d_model, "nh": cfg.num_heads, "d_ff": cfg.d_ff, "max_len": cfg.max_len,
            "norm_first": cfg.norm_first, "tok_emb": encode_f32(model.tok_emb.weight), "pos": encode_f32(pos),
            "blocks": blocks, "norm": norm, "head_w": encode_f32(model.head.weight),
            "head_b": encode_f32(model.head.bias)}


def attention_explorer(model, *, inputs: tuple[str, str] = ("3 1 4 1 5 9 2 6", "3 1 4 1 5 9 2 7"),
                       presets: dict[str, str] | None = None, task: str | None = None, layer: int = 0,
                       head: int | str = 0, query: int = 0,
                       title: str = "Attention explorer: the tiny Transformer, running in your browser") -> BrowserExplorer:
    """The tiny Transformer's attention, computed in the reader's browser from its exported weights.

    Args:
        model: a trained :class:`utils.transformer.TinyTransformer` (digit tokens 0-9).
        inputs: the two digit sequences shown side by side at first (A and B).
        presets: named digit sequences for the drop-downs (e.g. test sequences).
        task: ``"reverse"``, ``"sort"`` or ``"copy"`` to mark each output position right or wrong.
        layer, head, query: the starting view (``head="mean"`` for the mean over heads).

    The temperature and the d_k of the scale ``1 / (sqrt(d_k) * temperature)`` act on every
    layer and the whole model is re-run, so the reader sees what they do to the prediction too.
    """
    exported = _export_tiny_transformer(model)
    for i, text in enumerate(inputs):
        ids = parse_digits(text)
        if len(ids) > exported["max_len"]:
            raise ValueError(f"inputs[{i}] has {len(ids)} digits; the model takes at most {exported['max_len']}")
    if len(inputs) != 2:
        raise ValueError(f"inputs must be two digit sequences (A and B), got {len(inputs)}")
    if task not in (None, "reverse", "sort", "copy"):
        raise ValueError(f"task must be None, 'reverse', 'sort' or 'copy', got {task!r}")
    config = {"model": exported, "inputs": list(inputs), "task": task, "layer": int(layer), "head": head,
              "query": int(query), "presets": [[k, v] for k, v in (presets or {}).items()]}
    return BrowserExplorer("attention", config, title=title)


def qkv_explorer(*, q_angle: float = 20.0, q_length: float = 2.0,
                 keys: tuple[tuple[float, float], ...] = ((0.0, 2.0), (70.0, 2.0), (150.0, 2.0)),
                 values: tuple[tuple[float, float], ...] = ((3.0, 0.5), (-1.0, 3.0), (-2.5, -2.0)),
                 temperature: float = 1.0,
                 title: str = "Q/K/V toy: one query, three keys, three values") -> BrowserExplorer:
    """The Q/K/V toy in the reader's browser: a 2-D query, three keys ``(angle in degrees, length)``
    with their own lengths, three 2-D values, and the output ``sum_j a_j v_j``, which always lies
    in the triangle of the values. Python reference: :func:`utils.widgets.reference.qkv_toy`."""
    if len(keys) != 3 or len(values) != 3:
        raise ValueError(f"keys and values must hold three entries each, got {len(keys)} and {len(values)}")
    if not 0.1 <= temperature <= 10:
        raise ValueError(f"temperature must be in [0.1, 10] (the slider's range), got {temperature!r}")
    config = {"q_angle": float(q_angle), "q_length": float(q_length), "keys": [[float(a), float(l)] for a, l in keys],
              "values": [[float(x), float(y)] for x, y in values], "temperature": float(temperature)}
    return BrowserExplorer("attention", config, mount="qkv", title=title)


def dk_explorer(*, d_k: int = 64, seed: int = 0,
                title: str = "Why divide by sqrt(d_k): scores of random vectors, scaled and unscaled") -> BrowserExplorer:
    """The measurement of chapter 40 as a slider over d_k (2 to 1024), in the reader's browser:
    16 random queries and 32 random keys with N(0, 1) entries; the spread of the scores, the
    mean largest weight and the mean row entropy with and without the ``1/sqrt(d_k)`` scale.
    Python reference: :func:`utils.widgets.reference.saturation_stats`."""
    if d_k not in [2 ** k for k in range(1, 11)]:
        raise ValueError(f"d_k must be a power of two from 2 to 1024, got {d_k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return BrowserExplorer("attention", {"dk": int(d_k), "seed": seed}, mount="dk", title=title)


def attention_maps_for_texts(texts: list[str], tokenizer, model, *, max_tokens: int = 24) -> dict[str, AttentionMaps]:
    """``{text: encoder_attention(text, ...)}``: the stored maps of :func:`stored_attention_explorer`.

    Works for any Hugging Face model loaded with ``output_attentions=True`` (an encoder such as
    MiniLM, or a causal LM such as SmolLM2 loaded with the eager attention implementation).
    """
    if not texts:
        raise ValueError("texts must hold at least one sentence")
    return {t: encoder_attention(t, tokenizer, model, max_tokens=max_tokens) for t in texts}


def stored_attention_explorer(sources: dict[str, dict[str, AttentionMaps]], *, causal: dict[str, bool] | None = None,
                              notes: dict[str, str] | None = None, layers: dict[str, list[int]] | None = None,
                              defaults: dict[str, dict] | None = None,
                              title: str = "Attention in real models: precomputed maps, two sentences side by side"
                              ) -> BrowserExplorer:
    """Precomputed attention maps of real models, browsable in the reader's browser.

    Args:
        sources: model name -> ``{sentence: maps}`` for a set of sentences
            (:func:`attention_maps_for_texts`).
            This is the hook for more models: add e.g. ``"SmolLM2-135M-Instruct"`` with maps
            computed by :func:`attention_maps_for_texts` from the causal LM, and say
            ``causal={"SmolLM2-135M-Instruct": True}``.
        causal: model name -> whether it is a causal (decoder) model; only labels the note.
        notes: model name -> a sentence shown under the controls (replaces the default note).
        layers: model name -> which layers to store (default all); keep the output small for deep
            models (each stored value costs about 2.7 characters).
        defaults: model name -> starting view ``{"a", "b", "layer", "head", "query_token"}``
            (``a``/``b`` sentence indices, ``b`` may be omitted for one panel).

    The maps are stored to 1/65535 (uint16) and nothing is re-run: there is no temperature or
    causal-mask what-if on stored maps, since a layer's weights depend on earlier layers that
    such a change would also alter.
    """
    if not sources:
        raise ValueError("sources must map at least one model name to its maps")
    out = []
    for name, by_text in sources.items():
        if not isinstance(by_text, dict) or not by_text:
            raise ValueError(f"sources[{name!r}] must map sentences to their AttentionMaps, got {type(by_text).__name__}")
        L, nh = next(iter(by_text.values())).weights.shape[:2]
        keep = list(range(L)) if not layers or name not in layers else [int(l) for l in layers[name]]
        if any(not 0 <= l < L for l in keep):
            raise ValueError(f"layers[{name!r}] must be layer indices in [0, {L}), got {keep}")
        is_causal = bool((causal or {}).get(name, False))
        default_note = (f"{name}: causal (decoder) model, so every token attends only to itself and earlier tokens; "
                        if is_causal else
                        f"{name}: bidirectional encoder, so every token attends to the whole sentence (the maps are "
                        "what the model computed; a causal mask cannot be added afterwards, because the earlier "
                        "layers have already mixed in the later tokens); ")
        default_note += f"{L} layers x {nh} heads, maps stored for layers {keep}."
        sentences = []
        for text, m in by_text.items():
            if tuple(m.weights.shape[:2]) != (L, nh):
                raise ValueError(f"sources[{name!r}]: every entry must have {L} layers and {nh} heads, got "
                                 f"{tuple(m.weights.shape[:2])}")
            sentences.append({"text": str(text), "tokens": list(m.tokens), "w": encode_unit_u16(m.weights[keep])})
        out.append({"name": name, "nh": int(nh), "layers": keep, "causal": is_causal,
                    "note": (notes or {}).get(name, default_note), "sentences": sentences})
    config = {"sources": out, "defaults": defaults or {}}
    return BrowserExplorer("attention", config, mount="stored_attention", title=title)
