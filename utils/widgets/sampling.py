"""The sampling widget: a language model's next-token distribution before and after temperature,
top-k and top-p, and the text it generates with those settings.

Compute lives in :mod:`utils.sampling`; this module draws and wires controls. Explained in
chapter 4, "Pretraining a tiny GPT".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

import matplotlib.pyplot as plt
import numpy as np
import torch

from utils.sampling import Filtered, filter_distribution, generate
from utils.widgets.fallback import figure_html, live_with_fallback

__all__ = ["SamplingSettings", "next_token_distribution", "plot_next_token", "sample_text", "make_sampling_widget"]


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # > 0; below 1 sharpens, above 1 flattens
    top_k: int | None = None  # keep the k most likely tokens (None: all)
    top_p: float | None = None  # keep the smallest set with probability >= top_p (None or 1: all)


@torch.no_grad()
def next_token_distribution(model: Callable[[torch.Tensor], torch.Tensor], ids: list[int], block_size: int,
                            settings: SamplingSettings) -> Filtered:
    """The model's distribution for the token after ``ids``, before and after the filters, ``(V,)`` each."""
    if not ids:
        raise ValueError("the prompt is empty: type at least one character")
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    idx = torch.tensor([ids[-block_size:]], device=device)
    logits = model(idx)[0, -1].float().cpu()  # (V,)
    return filter_distribution(logits, temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p)


def _label(token: str) -> str:
    return {"\n": "⏎", " ": "␣"}.get(token, token)


def plot_next_token(dist: Filtered, tokens: list[str], ax: plt.Axes | None = None, *, top: int = 20,
                    title: str = "") -> plt.Axes:
    """Bars of the ``top`` most likely next tokens: raw probabilities (grey) and after the filters (colour)."""
    ax = ax or plt.figure(figsize=(8, 2.8)).gca()
    order = torch.argsort(dist.before, descending=True)[:top].numpy()
    x = np.arange(len(order))
    ax.bar(x - 0.2, dist.before[order].numpy(), width=0.4, color="0.7", label="model (T = 1, no filter)")
    ax.bar(x + 0.2, dist.after[order].numpy(), width=0.4, color="C0", label="after temperature, top-k, top-p")
    ax.set_xticks(x, [_label(tokens[i]) for i in order], fontsize=9)
    kept = int((dist.after > 0).sum())
    ax.set_ylabel("probability")
    ax.set_title(title or f"next-token distribution: {kept} of {len(tokens)} tokens can be sampled", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def sample_text(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], prompt: str,
                settings: SamplingSettings, *, block_size: int, max_new_tokens: int = 120, seed: int = 0,
                greedy: bool = False) -> str:
    """The prompt continued by ``max_new_tokens`` sampled tokens (seeded, so repeatable)."""
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    idx = torch.tensor([encode(prompt)], device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = generate(model, idx, max_new_tokens, block_size=block_size, temperature=settings.temperature,
                   top_k=settings.top_k, top_p=settings.top_p, greedy=greedy, generator=gen)
    return decode(out[0].tolist())


def make_sampling_widget(model, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                         tokens: list[str], *, block_size: int, prompt: str = "The attention "):
    """Live: type a prompt, move temperature / top-k / top-p; see the next-token distribution change
    and the generated continuation. Returns the ``VBox``; ``.update()`` redraws and returns seconds."""
    import ipywidgets as w
    from IPython.display import display

    text = w.Text(value=prompt, description="prompt", continuous_update=False, layout=w.Layout(width="420px"))
    temperature = w.FloatLogSlider(1.0, base=10, min=-1, max=0.5, step=0.05, description="temperature",
                                   continuous_update=False)
    top_k = w.IntSlider(0, min=0, max=50, description="top-k (0=off)", continuous_update=False)
    top_p = w.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p", continuous_update=False)
    seed = w.IntSlider(0, min=0, max=20, description="seed", continuous_update=False)
    plot_out, text_out = w.Output(), w.Output(layout=w.Layout(border="1px solid #ccc", padding="4px"))

    def update(_change=None) -> float:
        start = perf_counter()
        settings = SamplingSettings(temperature.value, top_k.value or None, top_p.value)
        plot_out.clear_output(wait=True)
        text_out.clear_output(wait=True)
        try:
            ids = encode(text.value)
            dist = next_token_distribution(model, ids, block_size, settings)
        except ValueError as exc:
            with text_out:
                print(f"cannot use this prompt: {exc}")
            return perf_counter() - start
        with plot_out:
            plot_next_token(dist, tokens)
            plt.show()
        with text_out:
            print(sample_text(model, encode, decode, text.value, settings, block_size=block_size, seed=seed.value))
        return perf_counter() - start

    for ctl in (text, temperature, top_k, top_p, seed):
        ctl.observe(update, names="value")
    ui = w.VBox([w.HBox([text, seed]), w.HBox([temperature, top_k, top_p]), plot_out, text_out])
    ui.update = update
    update()
    display(live_with_fallback(ui, _default_view(model, encode, decode, tokens, prompt, block_size)))
    return ui


def _default_view(model, encode, decode, tokens, prompt: str, block_size: int) -> str:
    """The widget's opening state as static HTML (its counterpart in the published book): the
    next-token distribution at temperature 1 with no filter, and the seeded sample."""
    import html

    settings = SamplingSettings(1.0, None, 1.0)
    dist = next_token_distribution(model, encode(prompt), block_size, settings)
    ax = plot_next_token(dist, tokens)
    img = figure_html(ax.figure, f"Bar chart of the most likely next characters after the prompt {prompt!r} "
                                 "at temperature 1 with no top-k or top-p filter.")
    text = sample_text(model, encode, decode, prompt, settings, block_size=block_size, seed=0)
    return f'{img}<pre style="white-space:pre-wrap">{html.escape(text)}</pre>'

