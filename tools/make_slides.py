"""Export chapter notebooks as reveal.js slide decks that work offline.

    python tools/make_slides.py                      # every chapter notebook -> _build/slides/
    python tools/make_slides.py chapters/03_algorithms/40_attention.ipynb --out /tmp/slides

Slide boundaries come from the cells' ``slideshow`` metadata when an author has set it (Jupyter's
View > Cell Toolbar > Slideshow), and otherwise from the headings: a markdown cell that starts
with ``#`` or ``##`` opens a new slide, ``###`` a sub-slide (down arrow), every other cell
continues the current slide, and the hidden setup cell is skipped. reveal.js, RequireJS and
MathJax are copied from ``_vendor/`` next to the decks, so they open from disk with no network.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from nbtools import SETUP_TAG  # noqa: E402

VENDOR = ROOT / "_vendor"
VENDOR_FILES = ("reveal.js", "require.js", "mathjax", "jquery.min.js")


def slide_type(cell) -> str:
    """The reveal.js role of a cell: 'slide', 'subslide', '-' (continue) or 'skip'."""
    meta = cell.get("metadata", {})
    if "slideshow" in meta and meta["slideshow"].get("slide_type"):
        return meta["slideshow"]["slide_type"]
    if SETUP_TAG in meta.get("tags", []):
        return "skip"
    if cell.cell_type == "markdown":
        first = cell.source.lstrip().split("\n", 1)[0]
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith("### "):
            return "subslide"
    return "-"


def split_at_headings(cell) -> list:
    """Split a markdown cell before each heading line, so that every heading can open a slide."""
    if cell.cell_type != "markdown" or "slideshow" in cell.get("metadata", {}):
        return [cell]
    parts, current = [], []
    for line in cell.source.split("\n"):
        if line.startswith("#") and current and any(x.strip() for x in current):
            parts.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    parts.append("\n".join(current).strip("\n"))
    return [nbformat.v4.new_markdown_cell(p, metadata=copy.deepcopy(cell.metadata)) for p in parts if p.strip()]


def tag_for_slides(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb``, markdown split at headings, with ``slideshow`` metadata on every cell."""
    out = copy.deepcopy(nb)
    out.cells = [part for cell in out.cells for part in split_at_headings(cell)]
    for i, cell in enumerate(out.cells):
        kind = slide_type(cell)
        if i == 0 and kind == "-":
            kind = "slide"
        cell.metadata["slideshow"] = {"slide_type": kind}
    return out


def export(path: Path, out_dir: Path) -> Path:
    """Write ``<out_dir>/<chapter>__<name>.slides.html`` and return its path."""
    from nbconvert import SlidesExporter

    nb = tag_for_slides(nbformat.read(path, as_version=4))
    exporter = SlidesExporter(reveal_url_prefix="_vendor/reveal.js", reveal_theme="white", reveal_scroll=True,
                              require_js_url="_vendor/require.js", jquery_url="_vendor/jquery.min.js", mathjax_url="_vendor/mathjax/tex-chtml-full.js")
    title = next((c.source.lstrip("# ").split("\n", 1)[0] for c in nb.cells if c.cell_type == "markdown"), path.stem)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # Offline: the decks do not use mermaid, which the template imports from a CDN.
    body = re.sub(r'<script type="module">\s*import mermaid from [^<]*</script>', "", body)
    # The template re-renders maths with MathJax 2's API on each slide change; MathJax 3 (vendored)
    # typesets every slide at load, so a no-op stand-in for that API is all it needs.
    shim = ("<script>window.addEventListener('load', function () { if (window.MathJax && !MathJax.Hub) "
            "{ MathJax.Hub = { getAllJax: function () { return []; }, Rerender: function () {} }; } });</script>")
    body = body.replace("</head>", shim + "\n</head>", 1)
    # MathJax 3 reads its configuration from window.MathJax before it loads: enable $...$ inline maths.
    mj3 = ("<script>window.MathJax = { tex: { inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
           "processEscapes: true, tags: 'ams' } };</script>")
    body = body.replace('<script src="_vendor/mathjax/', mj3 + '\n<script src="_vendor/mathjax/', 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in VENDOR_FILES:
        src, dest = VENDOR / name, out_dir / "_vendor" / name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dest)
    target = out_dir / f"{path.parent.name}__{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "slides")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "chapters").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    written = [export(p, args.out) for p in paths]
    index = "\n".join(f'<li><a href="{w.name}">{w.name.removesuffix(".slides.html")}</a></li>' for w in written)
    (args.out / "index.html").write_text(f"<!doctype html><meta charset=utf-8><title>Slides</title>"
                                         f"<h1>Large Models, Hands-On: slides</h1><ul>{index}</ul>", encoding="utf-8")
    print(f"wrote {len(written)} slide decks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
