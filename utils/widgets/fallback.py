"""A live widget in a kernel, its kernel-free counterpart in the published book.

An ipywidgets view needs a running kernel. The HTML book has none: its widget-state renderer
would draw the controls from the saved state, and the reader would drag a slider that moves
nothing. :func:`live_with_fallback` displays one output that carries both

* the widget (``application/vnd.jupyter.widget-view+json``), which JupyterLab, VS Code and
  Colab render, live, as before; and
* a static HTML counterpart (``text/html``): the pre-rendered figure(s) of the widget's
  default settings, with alt text and a one-line note saying where the view is live.

Jupyter front ends prefer the widget; the book's build (``_config.yml``,
``nb_mime_priority_overrides``) ranks ``text/html`` above the widget view, so the published
page shows the counterpart and no dead control. The mime bundle is written by hand, so the same
call works with ipywidgets 7 (Colab) and 8.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import matplotlib.pyplot as plt

__all__ = ["LIVE_NOTE", "LiveWithFallback", "figure_html", "live_with_fallback"]

LIVE_NOTE = ("Live in JupyterLab, VS Code or Colab (run the notebook and move the controls); "
             "pre-rendered here with the default settings.")


def _figure_png(fig: plt.Figure, dpi: int) -> tuple[str, int, int]:
    """PNG of ``fig`` at ``dpi`` as base64, with its width and height in CSS pixels at 1x."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    from matplotlib.image import imread

    buf.seek(0)
    h, w = imread(buf).shape[:2]
    scale = fig.dpi / dpi if fig.dpi else 1.0  # shown at the figure's own size: sharp on 2x screens
    return base64.b64encode(buf.getvalue()).decode("ascii"), round(w * scale), round(h * scale)


def figure_html(fig: plt.Figure, alt: str, *, dpi: int = 180) -> str:
    """An ``<img>`` holding ``fig`` as an inline PNG rendered at ``dpi`` (and closed), shown at the
    figure's own size, with ``alt`` text."""
    if not isinstance(fig, plt.Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError(f"alt must be a non-empty string describing the figure, got {alt!r}")
    data, w, h = _figure_png(fig, dpi)
    return (f'<img src="data:image/png;base64,{data}" width="{w}" height="{h}" '
            f'alt="{html.escape(alt)}" style="max-width:100%;height:auto">')


class LiveWithFallback:
    """Display object: a widget plus its static counterpart (see the module docstring).

    Attributes:
        widget: the ipywidgets widget (controls still reachable, e.g. ``obj.widget.children``).
        fallback_html: the HTML shown where no kernel runs.
    """

    def __init__(self, widget: object, fallback_html: str) -> None:
        if not hasattr(widget, "model_id"):
            raise TypeError(f"widget must be an ipywidgets widget, got {type(widget).__name__}")
        if not isinstance(fallback_html, str) or not fallback_html.strip():
            raise ValueError("fallback_html must be a non-empty HTML string")
        self.widget = widget
        self.fallback_html = fallback_html

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/plain": repr(self.widget),
            "text/html": self.fallback_html,
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id},
        }


def live_with_fallback(widget: object, fallback: plt.Figure | Sequence[plt.Figure] | str, *,
                       alt: str | Sequence[str] | None = None, note: str = LIVE_NOTE,
                       dpi: int = 180) -> LiveWithFallback:
    """Pair a live ``widget`` with its kernel-free counterpart for the published book.

    Args:
        widget: the ipywidgets widget a builder returned (``make_*_widget()``).
        fallback: a matplotlib figure, a list of figures (small multiples of a few settings), or
            ready HTML. Figures are rendered at ``dpi`` (sharp on high-resolution screens) and
            closed, so they do not also appear as ordinary cell outputs.
        alt: alt text, one string or one per figure: what the figure shows, for readers who
            cannot see it (required with figures; ready HTML carries its own).
        note: the one-line note under the counterpart.

    Returns:
        A display object: make it the last expression of the cell (or ``display`` it).
    """
    if isinstance(fallback, str):
        if not fallback.strip():
            raise ValueError("fallback_html must be a non-empty HTML string, got only whitespace")
        body = fallback
    else:
        figs = ([fallback] if isinstance(fallback, plt.Figure)
                else list(fallback) if isinstance(fallback, (list, tuple)) else [])
        if not figs or not all(isinstance(f, plt.Figure) for f in figs):
            raise TypeError("fallback must be a matplotlib Figure, a non-empty list of Figures, or an HTML string")
        alts = [alt] * len(figs) if isinstance(alt, str) else list(alt or [])
        if len(alts) != len(figs) or not all(isinstance(a, str) and a.strip() for a in alts):
            raise ValueError(f"alt must be a non-empty string or one per figure ({len(figs)}), got {alt!r}")
        body = "".join(figure_html(fig, text, dpi=dpi) for fig, text in zip(figs, alts))
    markup = (f'<div class="lmho-widget-fallback">{body}'
              f'<p class="lmho-widget-note" style="font-size:0.85em;color:#555;margin:4px 0 0">'
              f'{html.escape(note)}</p></div>')
    return LiveWithFallback(widget, markup)
