"""The authoring tools: notebook conventions for every notebook, lab generation."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_labs  # noqa: E402
import nbtools  # noqa: E402

NOTEBOOKS = nbtools.all_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_follows_conventions(path):
    assert nbtools.check(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_stated_run_time_is_the_measured_one(path):
    """Each "CPU run time" is within 50 % of the suite's recorded duration (tools/notebook_durations.json,
    written by `python tools/nbtools.py runtimes` from a suite run's test-artifacts/notebook_durations.json)."""
    measured = json.loads(nbtools.DURATIONS.read_text())
    assert nbtools.runtime_problems(path, measured) == []


def test_runtime_statements_parse_and_compare(tmp_path):
    assert nbtools._pretty(42.4) == "42 s" and nbtools._pretty(150) == "2.5 min"
    assert nbtools.measured_key("labs/03_gru_from_scratch.ipynb") == "labs/solutions/03_gru_from_scratch.ipynb"
    nb = NOTEBOOKS[0]
    stated = nbtools.stated_seconds(nb)
    key = nb.relative_to(ROOT).as_posix()
    assert stated is not None
    assert nbtools.runtime_problems(nb, {key: stated}) == []
    assert nbtools.runtime_problems(nb, {key: stated * 1.4}) == []
    assert "measured" in nbtools.runtime_problems(nb, {key: stated * 2.1})[0]
    assert "no measured run time" in nbtools.runtime_problems(nb, {})[0]


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    missing = [p.relative_to(ROOT).with_suffix("").as_posix() for p in NOTEBOOKS
               if p.relative_to(ROOT).with_suffix("").as_posix() not in toc
               and "labs/solutions/" not in p.as_posix()]
    assert missing == []


def test_learner_labs_are_generated_from_the_solutions():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_labs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_strip_code_replaces_solution_blocks():
    src = "def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n\nprint(f)"
    assert make_labs.strip_code(src) == (
        'def f(x):\n    raise NotImplementedError("Exercise: write your code here")\n\nprint(f)')
    src = "# BEGIN SOLUTION\n# STUB: model = None\nmodel = build()\n# END SOLUTION"
    assert make_labs.strip_code(src) == "model = None"
    with pytest.raises(ValueError, match="without END"):
        make_labs.strip_code("# BEGIN SOLUTION\nx = 1")


def test_learner_copy_drops_solution_only_cells_and_outputs():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Q?\n<!-- BEGIN SOLUTION -->\nAnswer.\n<!-- END SOLUTION -->\nEnd."),
        nbformat.v4.new_code_cell("set_strict(True)", metadata={"tags": ["solution-only"]}),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="hi")]),
    ]
    out = make_labs.learner_copy(nb)
    assert [c.source for c in out.cells] == ["Q?\nEnd.", "x = 1"]
    assert out.cells[1].outputs == []


def test_setup_cell_uses_the_repository_url_from_config():
    assert nbtools.repository_url() in nbtools.setup_cell_source()


def test_instructor_toc_is_generated_and_complete():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_instructor_toc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    text = (ROOT / "_toc_instructor.yml").read_text()
    for sol in (ROOT / "labs" / "solutions").glob("*.ipynb"):
        assert sol.relative_to(ROOT).with_suffix("").as_posix() in text
    assert "labs/solutions" not in (ROOT / "_toc.yml").read_text()  # the learner book has no solutions


def test_every_lab_has_a_learner_copy_and_an_instructor_copy():
    solutions = {p.name for p in (ROOT / "labs" / "solutions").glob("*.ipynb")}
    learners = {p.name for p in (ROOT / "labs").glob("*.ipynb")}
    assert solutions == learners and solutions
    for name in solutions:
        nb = nbformat.read(ROOT / "labs" / "solutions" / name, as_version=4)
        assert any("solution-only" in c.metadata.get("tags", []) and "set_strict(True)" in c.source for c in nb.cells), name
