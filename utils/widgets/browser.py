"""Explorers that compute in the reader's browser: one self-contained HTML output per explorer.

The published book has no kernel, so an explorer that must react to the reader's own input
there has to compute in the browser. Each explorer here is one HTML output: a ``<div>`` and
one ``<script>`` holding the vendored JavaScript of ``utils/resources/widgets/`` (``core.js``
plus the explorer's own file, plain ES5, no dependencies) and the explorer's data as JSON:
the input images, the exported weights of a trained model as base64 float32, precomputed
attention maps. The same output runs unchanged, offline and without a widget manager, in the
static HTML book, JupyterLab, VS Code and Colab (whatever its ipywidgets version), because
none of them needs anything but a browser. A live kernel adds nothing: the Python side only
exports data, and :mod:`utils.widgets.reference` holds the Python computations that the
browser tests compare the rendered numbers with (``tests/test_widgets_browser.py``).

JupyterLab runs the scripts of an output only in a trusted notebook: a notebook you executed
yourself is trusted; a downloaded one shows the explorer after you run its cell (or trust it).
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["BrowserExplorer", "encode_f32", "encode_unit_u16", "js_source", "standalone_page"]

_counter = itertools.count()
KINDS = ("conv", "gating", "attention")


def js_source(name: str) -> str:
    """Text of a vendored script in ``utils/resources/widgets`` (``"core"``, ``"conv"``, ...)."""
    if name not in ("core",) + KINDS:
        raise ValueError(f"name must be one of {('core',) + KINDS}, got {name!r}")
    return resources.files("utils").joinpath("resources", "widgets", f"{name}.js").read_text(encoding="utf-8")


def encode_f32(array) -> str:
    """Base64 of the little-endian float32 bytes of ``array`` (flattened, C order): exact float32
    values in about 5.3 characters each, decoded by ``LMHO.decodeF32``."""
    a = np.ascontiguousarray(np.asarray(_numpy(array), dtype="<f4")).ravel()
    return base64.b64encode(a.tobytes()).decode("ascii")


def encode_unit_u16(array) -> str:
    """Base64 of values in [0, 1] stored as little-endian uint16 ``round(x * 65535)`` (absolute
    error below 8e-6, 2.7 characters per value); decoded by ``LMHO.decodeUnitU16``."""
    a = np.asarray(_numpy(array), dtype=np.float64).ravel()
    if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
        raise ValueError(f"array must hold values in [0, 1], got [{a.min():g}, {a.max():g}]")
    q = np.round(np.clip(a, 0, 1) * 65535).astype("<u2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return x


class BrowserExplorer:
    """One explorer as an HTML output (displayed by Jupyter through ``_repr_html_``).

    Args:
        kind: the explorer's script, ``"conv"``, ``"gating"`` or ``"attention"``.
        config: JSON-serialisable data handed to ``LMHO.mount_<mount>(root, config)``.
        mount: the mount function's suffix (default ``kind``); ``attention.js`` mounts three
            explorers (``"attention"``, ``"qkv"``, ``"stored_attention"``).
        title: shown above the explorer.
    """

    def __init__(self, kind: str, config: dict, *, mount: str | None = None, title: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        self.kind, self.mount = kind, mount or kind
        self.config = dict(config, title=title)
        self.title = title

    @property
    def config_json(self) -> str:
        # JSON is valid JavaScript; "</" is escaped so that no string can close the <script>
        text = json.dumps(self.config, separators=(",", ":"), allow_nan=False)
        return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

    def to_html(self) -> str:
        """The whole output: a container, a loading note and one script (deterministic except
        for a per-session counter that keeps ids unique when an explorer is shown twice)."""
        cfg = self.config_json
        digest = hashlib.sha1(cfg.encode()).hexdigest()[:10]
        uid = f"lmho-{self.mount}-{digest}-{next(_counter)}"
        script = (f"(function () {{\n\"use strict\";\nvar LMHO = {{}};\n{js_source('core')}\n{js_source(self.kind)}\n"
                  f"var root = document.getElementById({json.dumps(uid)});\n"
                  f"if (root && !root.getAttribute(\"data-ready\")) LMHO.mount_{self.mount}(root, {cfg});\n}})();")
        note = ("Interactive explorer: it computes in your browser and needs JavaScript. In JupyterLab, run this "
                "cell (or trust the notebook) to start it.")
        return (f'<div id="{uid}" class="lmho-explorer lmho-{self.mount}" data-kind="{self.mount}">'
                f'<div class="lmho-loading" style="color:#555;font-size:12px">{html.escape(note)}</div></div>\n'
                f"<script>\n{script}\n</script>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"BrowserExplorer({self.mount!r}, {len(self.config_json)} characters of data)"

    def save(self, path: str | Path) -> Path:
        """Write a standalone page with this explorer (open it in any browser, offline)."""
        path = Path(path)
        path.write_text(standalone_page([self], title=self.title), encoding="utf-8")
        return path


def standalone_page(explorers: list[BrowserExplorer], *, title: str = "Explorer") -> str:
    """A complete HTML page holding ``explorers`` (used by the browser tests and :meth:`BrowserExplorer.save`)."""
    body = "\n".join(e.to_html() for e in explorers)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body>\n{body}\n</body></html>\n")
