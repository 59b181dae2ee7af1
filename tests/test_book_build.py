"""The book as the README builds it: `bash scripts/book.sh`, notebooks executed, figures published.

The browser test (test_book_html.py) renders the notebooks' stored outputs. This test takes the
reader's path instead: it runs the README's book command itself, `bash scripts/book.sh` (which
sets up the environment and runs `jupyter-book build` with execution on), on a table of contents
of plotting chapters, into a temporary folder, and checks that every figure each notebook draws
reaches its published page. It is the test that fails if anything in the build's environment
(for example `MPLBACKEND=Agg`) stops the kernels from emitting figures.
"""

from __future__ import annotations

import subprocess

import nbformat
import pytest

from book_figures import figures_drawn, figures_published
from browser import ROOT

# Two quick chapters that plot (several figures each; about 10-20 s of execution together).
CHAPTERS = ["chapters/01_background/01_from_ai_to_large_models",
            "chapters/03_algorithms/41_multi_head_and_positions"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme-book")
    toc = tmp / "_toc.yml"
    toc.write_text("format: jb-book\nroot: intro\nchapters:\n" + "".join(f"- file: {c}\n" for c in CHAPTERS))
    result = subprocess.run(["bash", "scripts/book.sh", "--toc", str(toc), "--path-output", str(tmp)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return tmp / "_build"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_readme_build_publishes_every_figure(built, chapter):
    stored = figures_drawn(ROOT / f"{chapter}.ipynb")
    executed = figures_drawn(nbformat.read(built / "jupyter_execute" / f"{chapter}.ipynb", as_version=4))
    published = figures_published(built / "html" / f"{chapter}.html")
    assert stored > 0, f"{chapter} is meant to be a plotting chapter"
    assert executed == stored, f"the build's kernels drew {executed} figures, the notebook draws {stored}"
    assert published >= executed, f"{chapter}: the page shows {published} figures, the notebook drew {executed}"
