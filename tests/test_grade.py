"""utils.checks.grade: run a folder of submitted lab notebooks and tabulate the checkers' verdicts."""

import csv

import nbformat
import pytest

from utils.checks import FAIL, PASS, TODO, CheckResult
from utils.checks.grade import COLUMNS, find_submissions, main, parse_verdicts

HEAD = nbformat.v4.new_markdown_cell("# Lab 0: doubling\n\nYou will learn to double a tensor.")
IMPORTS = "import torch\nfrom utils.checks import Case, run_cases"
CHECK = ('cases = [Case("a vector", (torch.arange(3.0),)), Case("a matrix", (torch.ones(2, 2),))]\n'
         'run_cases(double, lambda x: 2 * x, cases, name="double")')


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook(cells=[HEAD] + [nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    _notebook(folder / "alice.ipynb", IMPORTS, "def double(x):\n    return 2 * x", CHECK)  # passes
    _notebook(folder / "bob.ipynb", IMPORTS, "def double(x):\n    return x + 2", CHECK)  # wrong answer
    _notebook(folder / "carol" / "lab0.ipynb", IMPORTS,  # a cell that raises, then a stub, then the check
              "scale = 2\nraise ValueError('my own bug')",
              "def double(x):\n    raise NotImplementedError('fill in double')", CHECK)
    _notebook(folder / "dan.ipynb", IMPORTS, "import time\ntime.sleep(60)", "print('never graded')")  # too slow
    (folder / "erin.ipynb").write_text("this is not a notebook")
    (folder / "carol" / ".ipynb_checkpoints").mkdir()
    _notebook(folder / "carol" / ".ipynb_checkpoints" / "lab0-checkpoint.ipynb", "print('ignored')")
    return folder


def test_verdict_lines_are_parsed_as_the_checkers_print_them():
    lines = [str(CheckResult("conv2d", PASS, "all 4 cases match the reference")),
             str(CheckResult("gru_cell", FAIL, "on case 'one step': output: expected shape (2, 3), got shape (3, 2)")),
             str(CheckResult("attention", TODO, "`attention` still raises NotImplementedError")),
             "some other output, loss 0.31", "PASS without a bracketed name is not a verdict"]
    assert parse_verdicts("\n".join(lines)) == [
        (PASS, "conv2d", "all 4 cases match the reference"),
        (FAIL, "gru_cell", "on case 'one step': output: expected shape (2, 3), got shape (3, 2)"),
        (TODO, "attention", "`attention` still raises NotImplementedError")]


def test_find_submissions_names_students_by_file_or_folder(submissions):
    found = [(s, p.relative_to(submissions).as_posix()) for s, p in find_submissions(submissions)]
    assert found == [("alice", "alice.ipynb"), ("bob", "bob.ipynb"), ("carol", "carol/lab0.ipynb"),
                     ("dan", "dan.ipynb"), ("erin", "erin.ipynb")]
    with pytest.raises(ValueError, match="submissions must be a folder"):
        find_submissions(submissions / "alice.ipynb")


def test_grading_a_folder_writes_one_row_per_student_and_verdict(submissions, tmp_path, capsys):
    out = tmp_path / "grades.csv"
    assert main([str(submissions), "--out", str(out), "--timeout", "10", "--jobs", "2"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == COLUMNS
    got = [(r["student"], r["check"], r["status"]) for r in rows]
    assert got == [("alice", "double", PASS),
                   ("bob", "double", FAIL),
                   ("carol", "cell 2", "ERROR"), ("carol", "double", TODO),
                   ("dan", "cell 2", "TIMEOUT"),
                   ("erin", "(notebook)", "ERROR")]
    by = {(r["student"], r["status"]): r for r in rows}
    assert by[("alice", PASS)]["lab"] == "Lab 0: doubling"
    assert by[("alice", PASS)]["message"] == "all 2 cases match the reference"
    assert "on case 'a vector'" in by[("bob", FAIL)]["message"]
    assert by[("carol", "ERROR")]["message"] == "code cell 2 raised ValueError: my own bug"
    assert by[("carol", TODO)]["notebook"] == "carol/lab0.ipynb"
    assert "longer than 10 s" in by[("dan", "TIMEOUT")]["message"]
    assert "cannot read" in by[("erin", "ERROR")]["message"]
    summary = capsys.readouterr().out
    assert "alice    1 / 1   checks passed" in summary and "6 rows written" in summary


def test_bad_arguments_are_reported(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2  # an empty folder
    assert "no .ipynb files" in capsys.readouterr().err
    from utils.checks.grade import grade_folder

    with pytest.raises(ValueError, match="jobs must be a positive int"):
        grade_folder(tmp_path, jobs=0)
