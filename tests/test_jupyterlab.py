"""Running a lab in JupyterLab, proven rather than assumed.

Starts a real JupyterLab server on localhost, opens a lab notebook in headless Chromium,
runs all its cells through the real kernel protocol (the same menu a learner clicks), and
checks that every cell finished without a traceback, that widgets were created and rendered
(the training progress bar and the checkers' verdicts), and that the checks passed. The notebook
is copied to a temporary folder so that JupyterLab's autosave cannot touch the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import ARTIFACTS, CHROMIUM_ARGS, ROOT, free_port, require_browser

LAB = ROOT / "labs" / "solutions" / "02_convolution_from_scratch.ipynb"
TOKEN = "lmho-test-token"


@pytest.fixture()
def jupyter_server(tmp_path):
    if not LAB.exists():
        pytest.fail(f"{LAB.relative_to(ROOT)} is missing")
    shutil.copy(LAB, tmp_path / LAB.name)
    port = free_port()
    # JupyterLab 4 only keeps the cells near the viewport in the DOM ("windowing"); render all of them
    # so that the test sees every output, as a learner scrolling through the notebook would.
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", JUPYTER_PLATFORM_DIRS="1",
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited:\n" + (tmp_path / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_lab_runs_in_jupyterlab(jupyter_server):
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=require_browser(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{jupyter_server}/lab/tree/{LAB.name}?token={TOKEN}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        # On a fresh machine JupyterLab may ask which kernel to start (no kernel preference saved yet):
        # accept the preselected Python 3 kernel, as a learner would.
        try:
            page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=15_000)
            page.click(".jp-Dialog .jp-mod-accept")
        except Exception:  # no dialog: the notebook's kernel started by itself
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        # Run > Run All Cells, as a learner would.
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        page.wait_for_function(
            "document.querySelectorAll('.jp-InputArea-prompt').length > 0 && "
            "Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))"
            ".every(p => /\\[\\d+\\]/.test(p.textContent))", timeout=480_000, polling=1000)
        text = page.inner_text(".jp-NotebookPanel")
        widgets = page.eval_on_selector_all(".jp-OutputArea-output .jupyter-widgets", "els => els.length")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_lab.png"))
        browser.close()
    assert "Traceback" not in text, "a cell raised in JupyterLab"
    assert widgets > 0, "no widget was rendered in the lab"
    assert "✅ PASS" in text and "❌ FAIL" not in text
