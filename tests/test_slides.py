"""Slides for instructors: exported from the notebooks, offline, and working in a browser."""

from __future__ import annotations

import sys

import nbformat

from browser import CHROMIUM_ARGS, ROOT, require_browser, serve_directory

sys.path.insert(0, str(ROOT / "tools"))
import make_slides  # noqa: E402

NOTEBOOK = ROOT / "chapters" / "01_background" / "01_from_ai_to_large_models.ipynb"


def test_slide_types_follow_headings_and_explicit_metadata():
    md = nbformat.v4.new_markdown_cell
    cells = [md("# Title"), md("## Part"), md("### Detail"), md("text"),
             nbformat.v4.new_code_cell("x", metadata={"tags": ["colab-setup"]}),
             md("## but skipped", metadata={"slideshow": {"slide_type": "skip"}})]
    assert [make_slides.slide_type(c) for c in cells] == ["slide", "slide", "subslide", "-", "skip", "skip"]


def test_markdown_is_split_at_headings():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A\ntext\n## B\nmore\n### C")]
    tagged = make_slides.tag_for_slides(nb)
    assert [c.source for c in tagged.cells] == ["# A\ntext", "## B\nmore", "### C"]
    assert [c.metadata["slideshow"]["slide_type"] for c in tagged.cells] == ["slide", "slide", "subslide"]


def test_deck_is_offline_and_runs_in_a_browser(tmp_path):
    deck = make_slides.export(NOTEBOOK, tmp_path)
    html = deck.read_text()
    assert "cdnjs.cloudflare.com" not in html and "unpkg.com" not in html
    assert (tmp_path / "_vendor" / "reveal.js" / "dist" / "reveal.js").exists()
    require_browser()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with serve_directory(tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_browser(), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(120_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("favicon.ico") else None)
        page.goto(f"{base}/{deck.name}", wait_until="load")
        page.wait_for_selector(".reveal.ready", state="attached", timeout=20000)  # reveal.js initialised
        n_slides = page.evaluate("document.querySelectorAll('.reveal .slides > section').length")
        page.wait_for_selector("mjx-container", state="attached", timeout=20000)  # maths typeset offline
        for _ in range(3):
            page.keyboard.press("ArrowRight")  # navigate: no error on slide change
        page.wait_for_timeout(500)
        browser.close()
    assert n_slides >= 5
    assert errors == []
