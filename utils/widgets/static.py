"""Kernel-free views for the published book: pre-rendered frames behind a slider.

A live ipywidgets view needs a running kernel; the HTML book has none. :func:`frame_player`
embeds a few pre-rendered PNG frames (for example the kernel position of a convolution, the
time step of a GRU, the layer/head of an attention map) in one HTML output with a range
slider, a play button and a caption, written in plain inline JavaScript: it stays
interactive in the HTML book, offline, and also works in JupyterLab and Colab.

A frame player replays; it cannot take the reader's own input. The convolution, gating and
attention explorers therefore compute in the browser instead (:mod:`utils.widgets.browser`);
keep frame players for places where a fixed sequence of figures is the point.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Sequence

import matplotlib.pyplot as plt

__all__ = ["figure_to_data_uri", "frame_player", "MAX_FRAMES"]

MAX_FRAMES = 40
_ids = itertools.count()


def figure_to_data_uri(fig: plt.Figure, *, dpi: int = 72, close: bool = True) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI (and close it)."""
    if not isinstance(fig, plt.Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def frame_player(frames: Sequence[plt.Figure | str], *, labels: Sequence[str] | None = None,
                 title: str = "", interval_ms: int = 700, dpi: int = 72):
    """An HTML slider over pre-rendered frames that needs no kernel.

    Args:
        frames: matplotlib figures (rendered and closed here) or ready ``data:`` URIs; at most
            ``MAX_FRAMES`` so the stored output stays small.
        labels: one caption per frame (default ``"frame i"``).
        title: shown above the player.
        interval_ms: delay between frames when playing.

    Returns:
        An ``IPython.display.HTML`` object; display it as a cell's last expression.
    """
    from IPython.display import HTML

    frames = list(frames)
    if not 1 <= len(frames) <= MAX_FRAMES:
        raise ValueError(f"frames must hold between 1 and {MAX_FRAMES} frames, got {len(frames)}")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"labels must have one entry per frame ({len(frames)}), got {len(labels)}")
    if not isinstance(interval_ms, int) or interval_ms <= 0:
        raise ValueError(f"interval_ms must be a positive int, got {interval_ms!r}")
    uris = [f if isinstance(f, str) else figure_to_data_uri(f, dpi=dpi) for f in frames]
    if not all(u.startswith("data:image/") for u in uris):
        raise ValueError("string frames must be data:image/... URIs")
    labels = [str(s) for s in labels] if labels is not None else [f"frame {i}" for i in range(len(uris))]
    uid = f"lmho-player-{next(_ids)}"
    imgs = "".join(
        f'<img src="{u}" alt="{html.escape(lab)}" data-i="{i}" '
        f'style="max-width:100%;display:{"block" if i == 0 else "none"}">'
        for i, (u, lab) in enumerate(zip(uris, labels)))
    caps = html.escape("\u241f".join(labels))
    n = len(uris)
    markup = f"""
<div id="{uid}" class="lmho-frame-player" style="border:1px solid #ddd;border-radius:6px;padding:8px;max-width:760px">
  <div style="font-weight:600;margin-bottom:4px">{html.escape(title)}</div>
  <div class="frames">{imgs}</div>
  <div style="display:flex;gap:8px;align-items:center;margin-top:6px">
    <button type="button" class="play" aria-label="play">&#9654;</button>
    <input type="range" class="slider" min="0" max="{n - 1}" value="0" step="1" style="flex:1" aria-label="frame">
    <span class="caption" style="min-width:12em;font-family:monospace">{html.escape(labels[0])}</span>
  </div>
  <div style="font-size:0.8em;color:#666">Pre-rendered frames: drag the slider or press play (works without a kernel).</div>
</div>
<script>
(function() {{
  var root = document.getElementById("{uid}");
  if (!root) return;
  var imgs = root.querySelectorAll(".frames img"), slider = root.querySelector(".slider");
  var caption = root.querySelector(".caption"), play = root.querySelector(".play");
  var caps = "{caps}".split("\u241f"), timer = null;
  function show(i) {{
    for (var k = 0; k < imgs.length; k++) imgs[k].style.display = (k == i) ? "block" : "none";
    slider.value = i; caption.textContent = caps[i];
  }}
  slider.addEventListener("input", function() {{ show(parseInt(slider.value, 10)); }});
  play.addEventListener("click", function() {{
    if (timer) {{ clearInterval(timer); timer = null; play.innerHTML = "&#9654;"; return; }}
    play.innerHTML = "&#10074;&#10074;";
    timer = setInterval(function() {{ show((parseInt(slider.value, 10) + 1) % {n}); }}, {interval_ms});
  }});
}})();
</script>"""
    return HTML(markup)
