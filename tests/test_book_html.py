"""The published book, checked in a real browser.

Builds the HTML book (from the notebooks' stored outputs: nbval executes every notebook in the
same test run, and `scripts/book.sh` executes them again when a reader builds the book), with
`-W -n` so that any Sphinx warning, including a broken cross-reference, fails. Then serves it on
localhost and opens every page of the table of contents in headless Chromium to check that it
loads without console errors, that equations render (MathJax, served from the book itself),
that images load, that internal links resolve, that each page shows every figure its notebook
draws, and that no control is dead: ipywidgets controls (which need a kernel) must not be
rendered at all, and every other visible control in a cell output (frame players, in-page
explorers) is moved and must change something on the page. Screenshots of key pages go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import yaml

from book_figures import figures_drawn, figures_published
from browser import ARTIFACTS, CHROMIUM_ARGS, ROOT, require_browser, serve_directory

JB = Path(sys.executable).with_name("jupyter-book")
# Console messages that are not faults of the book: sphinx-thebe's unset URL (STACK.md), and the
# pydata theme's note on a first visit with empty localStorage.
HARMLESS = ("THEBE_JS_URL", "Got invalid theme mode", "Failed to load resource")
KEY_PAGES = ("intro", "chapters/01_background/01_from_ai_to_large_models")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # stored outputs; nbval runs the code
    cfg_path = out / "_config.yml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))  # order matters (require.js first)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run([str(JB), "build", str(ROOT), "--path-output", str(out), "--config", str(cfg_path),
                             "-W", "-n", "--keep-going"], capture_output=True, text=True, env=env, timeout=900)
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if re.search(r"WARNING|ERROR", line) and "Kernel is running over TCP" not in line]
    assert result.returncode == 0 and not warnings, "book build failed or warned:\n" + "\n".join(warnings[-30:] or log.splitlines()[-30:])
    return out / "_build" / "html"


def test_every_toc_page_was_built(html_dir):
    missing = [f for f in toc_files() if not (html_dir / f"{f}.html").exists()]
    assert missing == []


def test_assets_are_local_not_cdn(html_dir):
    page = (html_dir / "chapters/01_background/01_from_ai_to_large_models.html").read_text()
    assert "_static/mathjax/tex-chtml-full.js" in page
    assert "cdn.jsdelivr.net/npm/mathjax" not in page and "cdnjs.cloudflare.com" not in page
    assert (html_dir / "_static/html-manager/embed-amd.js").exists()


def test_every_page_shows_the_figures_its_notebook_draws(html_dir):
    short = []
    for name in toc_files():
        nb = ROOT / f"{name}.ipynb"
        if nb.exists():
            drawn, shown = figures_drawn(nb), figures_published(html_dir / f"{name}.html")
            if shown < drawn:
                short.append(f"{name}: {shown} figures published, the notebook draws {drawn}")
    assert short == []


# ipywidgets controls rendered from saved widget state: they need a kernel, so on a book page they
# are dead. Progress bars, labels, HTML and layout boxes are not controls.
DEAD_WIDGET_SELECTOR = ", ".join(f".jupyter-widgets.{c}" for c in (
    "widget-slider", "widget-hslider", "widget-vslider", "widget-dropdown", "widget-select",
    "widget-select-multiple", "widget-toggle-buttons", "widget-radio", "widget-checkbox", "widget-text",
    "widget-textarea", "widget-button", "widget-toggle-button", "widget-inline-hbox.widget-play",
    "widget-colorpicker", "widget-datepicker"))

# Snapshot of a cell output: markup, form state and canvas pixels (an explorer may draw on a canvas).
SNAPSHOT_JS = """el => {
  const box = el.closest('.cell_output') || el.parentElement;
  const forms = Array.from(box.querySelectorAll('input, select, textarea')).map(i => i.type === 'checkbox' ? i.checked : i.value);
  const canvases = Array.from(box.querySelectorAll('canvas')).map(c => { try { return c.toDataURL().length + ':' + c.toDataURL().slice(-64); } catch (e) { return ''; } });
  return box.innerHTML.length + '|' + box.innerText + '|' + box.innerHTML.replace(/value="[^"]*"/g, '') + '|' + canvases.join(',');
}"""

MOVE_JS = """el => {
  const fire = t => el.dispatchEvent(new Event(t, {bubbles: true}));
  const tag = el.tagName.toLowerCase(), type = (el.type || '').toLowerCase();
  if (tag === 'select') { el.selectedIndex = (el.selectedIndex + 1) % el.options.length; fire('input'); fire('change'); return 'select'; }
  if (type === 'range') {
    const lo = parseFloat(el.min || 0), hi = parseFloat(el.max || 100), v = parseFloat(el.value);
    el.value = (v === hi) ? lo : hi; fire('input'); fire('change'); return 'range';
  }
  if (type === 'checkbox' || type === 'radio' || tag === 'button' || type === 'button' || type === 'submit') { el.click(); return 'click'; }
  if (type === 'number') { el.value = String((parseFloat(el.value) || 0) + 1); fire('input'); fire('change'); return 'number'; }
  el.value = (el.value || '') + ' 1'; fire('input'); fire('change');
  el.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: '1'}));
  return 'text';
}"""


def check_controls(page, name: str) -> list[str]:
    """Move every visible control in the page's cell outputs; each must change its output."""
    problems = []
    dead = page.locator(DEAD_WIDGET_SELECTOR)
    if dead.count():
        problems.append(f"{name}: {dead.count()} ipywidgets control(s) rendered without a kernel (dead in the book)")
    controls = page.query_selector_all("article .cell_output input, article .cell_output select, "
                                       "article .cell_output textarea, article .cell_output button")
    for i, el in enumerate(controls):
        if not el.is_visible() or el.is_disabled():
            continue
        before = el.evaluate(SNAPSHOT_JS)
        kind = el.evaluate(MOVE_JS)
        page.wait_for_timeout(120)
        after = el.evaluate(SNAPSHOT_JS)
        if kind == "click" and el.evaluate("el => el.classList.contains('play')"):
            el.click()  # stop a frame player again
        if after == before:
            label = el.evaluate("el => el.getAttribute('aria-label') || el.name || el.id || el.className || el.tagName")
            problems.append(f"{name}: control {i} ({kind}, {label}) changed nothing on the page")
    return problems


def test_pages_in_a_real_browser(html_dir):
    require_browser()
    from playwright.sync_api import sync_playwright

    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with serve_directory(html_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_browser(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)  # a busy CI machine (two kernels beside the browser) loads pages slowly
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
        for name in toc_files():
            errors.clear()
            url = f"{base}/{name}.html"
            response = page.goto(url, wait_until="load")
            if response is None or not response.ok:
                problems.append(f"{name}: HTTP {response.status if response else 'no response'}")
                continue
            html = (html_dir / f"{name}.html").read_text()
            if re.search(r'class="math|\\\(|\$\$', html):
                try:
                    page.wait_for_selector("mjx-container", state="attached", timeout=30000)
                except Exception:
                    problems.append(f"{name}: equations did not render (no mjx-container)")
            try:  # let late images and widget scripts finish; on a busy machine this may never go quiet
                page.wait_for_load_state("networkidle", timeout=30_000)
            except Exception:
                page.wait_for_timeout(2_000)
            broken_images = page.evaluate(
                "Array.from(document.images).filter(i => i.offsetParent !== null && !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))")
            problems += [f"{name}: image did not load: {src}" for src in broken_images]
            for player in page.query_selector_all(".lmho-frame-player"):
                if not player.is_visible() or not player.query_selector("img").is_visible():
                    problems.append(f"{name}: a widget fallback (frame player) is not visible")
            for fallback in page.query_selector_all(".lmho-widget-fallback"):
                if not fallback.is_visible():
                    problems.append(f"{name}: a widget's static counterpart is not visible")
            for explorer in page.query_selector_all(".lmho-explorer"):  # in-page explorers (utils.widgets.browser)
                try:
                    page.wait_for_function("el => el.getAttribute('data-ready') === '1' || el.hasAttribute('data-error')",
                                           arg=explorer, timeout=15_000)
                except Exception:
                    pass
                if explorer.get_attribute("data-ready") != "1" or explorer.get_attribute("data-error") is not None:
                    problems.append(f"{name}: an in-page explorer did not start "
                                    f"({explorer.get_attribute('data-error') or 'not ready'})")
            problems += check_controls(page, name)
            for href in page.evaluate("Array.from(document.querySelectorAll('article a[href]')).map(a => a.getAttribute('href'))"):
                target = urlparse(urljoin(url, href))
                if target.scheme not in ("http", "") or not target.netloc.startswith("127.0.0.1") or not target.path:
                    continue
                path = html_dir / unquote(target.path).lstrip("/")
                if not path.exists():
                    problems.append(f"{name}: broken internal link {href}")
            problems += [f"{name}: console error: {e[:160]}" for e in errors if not any(h in e for h in HARMLESS)]
            if name in KEY_PAGES or name.endswith(("40_attention", "20_convolution")):
                page.screenshot(path=str(shots / (name.replace("/", "__") + ".png")), full_page=False)
        browser.close()
    assert problems == [], "\n".join(problems)
