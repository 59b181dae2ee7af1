"""The published book, checked in a real browser.

Builds the HTML book (from the notebooks' stored outputs: nbval executes every notebook in the
same test run, and `scripts/book.sh` executes them again when a reader builds the book), with
`-W -n` so that any Sphinx warning, including a broken cross-reference, fails. Then serves it on
localhost and opens every page of the table of contents in headless Chromium to check that it
loads without console errors, that equations render (MathJax, served from the book itself),
that images load, that internal links resolve, and that the widgets' kernel-free fallbacks are
visible. Screenshots of key pages go to test-artifacts/screenshots/.
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
            if "application/vnd.jupyter.widget-state+json" in html and "application/vnd.jupyter.widget-view+json" in html:
                try:
                    page.wait_for_selector(".jupyter-widgets", state="attached", timeout=15000)
                except Exception:
                    problems.append(f"{name}: embedded widget state did not render any widget")
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
