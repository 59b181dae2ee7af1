"""Grade a folder of submitted lab notebooks: run each one and tabulate the checkers' verdicts.

    python -m utils.checks.grade SUBMISSIONS [--out grades.csv] [--timeout 600] [--jobs 2]

``SUBMISSIONS`` holds one notebook per student (``alice.ipynb``, ``bob.ipynb``) or one folder per
student (``alice/02_convolution_from_scratch.ipynb``, ...; the student is the first folder under
``SUBMISSIONS``, so collected home directories work as they are). Each notebook is executed top to
bottom with nbclient in its own folder, every cell even after an error (so a bug in one exercise does
not hide the verdicts of the next), with a time limit per cell. Every verdict line a checker prints
(``✅ PASS [name] ...``, ``❌ FAIL [name] ...``, ``⏳ NOT YET IMPLEMENTED [name] ...``, see
:mod:`utils.checks`) becomes one CSV row; so does every cell that raised (``ERROR``), ran out of time
(``TIMEOUT``), and a notebook that printed no verdict at all (``NO VERDICT``).

CSV columns: ``student, notebook, lab, check, status, message`` (``lab`` is the notebook's title).
A summary per student (passed / verdicts) is printed at the end.

Executing a notebook runs the student's code with your permissions: grade inside a container or a
throw-away account (instructor/index.md, "Collecting and grading labs").
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from . import FAIL, PASS, TODO

__all__ = ["Row", "parse_verdicts", "find_submissions", "grade_notebook", "grade_folder", "write_csv", "main"]

ERROR, TIMEOUT, NO_VERDICT = "ERROR", "TIMEOUT", "NO VERDICT"
# A verdict line as CheckResult.__str__ prints it: an optional icon, the status, [name], the message.
_VERDICT = re.compile(r"^\s*(?:[^\w\s]+\s+)?(" + "|".join(re.escape(s) for s in (TODO, PASS, FAIL))
                      + r") \[([^\]]+)\] ?(.*)$")


@dataclass(frozen=True)
class Row:
    """One line of the grade sheet."""

    student: str
    notebook: str  # path relative to the submissions folder
    lab: str  # the notebook's title (its first '# ' heading)
    check: str  # the checker's name, or "cell N" for an error
    status: str  # PASS, FAIL, NOT YET IMPLEMENTED, ERROR, TIMEOUT or NO VERDICT
    message: str


COLUMNS = [f.name for f in fields(Row)]


def parse_verdicts(text: str) -> list[tuple[str, str, str]]:
    """``(status, check, message)`` for every verdict line in ``text`` (a cell's printed output)."""
    out = []
    for line in text.splitlines():
        m = _VERDICT.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3).strip()))
    return out


def find_submissions(folder: Path) -> list[tuple[str, Path]]:
    """``(student, notebook)`` for every ``.ipynb`` under ``folder`` (checkpoints skipped), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder of notebooks, got {str(folder)!r}")
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if ".ipynb_checkpoints" in rel.parts:
            continue
        student = rel.parts[0] if len(rel.parts) > 1 else path.stem
        found.append((student, path))
    return found


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") in ("display_data", "execute_result"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_notebook(path: Path, *, student: str, rel: str = "", timeout: int = 600,
                   kernel_name: str = "python3") -> list[Row]:
    """Execute ``path`` (a copy in memory; the file is not changed) and return its rows."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    rel = rel or path.name
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not a notebook: say so and go on with the others
        return [Row(student, rel, "", "(notebook)", ERROR, _one_line(f"cannot read: {type(exc).__name__}: {exc}"))]
    lab = _title(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(path.parent)}})
    rows: list[Row] = []
    try:
        client.execute()
    except DeadKernelError as exc:
        rows.append(Row(student, rel, lab, "(kernel)", ERROR, _one_line(f"the kernel died: {exc}")))
    except Exception as exc:  # the kernel could not start, a timeout nbclient could not interrupt, ...
        rows.append(Row(student, rel, lab, "(notebook)", ERROR, _one_line(f"{type(exc).__name__}: {exc}")))
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        for output in cell.get("outputs", []):
            for status, check, message in parse_verdicts(_output_text(output)):
                rows.append(Row(student, rel, lab, check, status, message))
            if output.get("output_type") == "error":
                ename, evalue = output.get("ename", ""), output.get("evalue", "")
                if ename == "KeyboardInterrupt":  # nbclient interrupts a cell that runs past the limit
                    rows.append(Row(student, rel, lab, f"cell {code_index}", TIMEOUT,
                                    f"code cell {code_index} ran longer than {timeout} s and was interrupted"))
                else:
                    rows.append(Row(student, rel, lab, f"cell {code_index}", ERROR,
                                    _one_line(f"code cell {code_index} raised {ename}: {evalue}")))
    if not rows:
        rows.append(Row(student, rel, lab, "(notebook)", NO_VERDICT, "ran without printing a checker verdict"))
    return rows


def _grade_job(job: tuple[str, str, str, int, str]) -> list[Row]:
    student, path, rel, timeout, kernel_name = job
    return grade_notebook(Path(path), student=student, rel=rel, timeout=timeout, kernel_name=kernel_name)


def grade_folder(folder: Path, *, timeout: int = 600, jobs: int = 1, kernel_name: str = "python3",
                 progress: bool = True) -> list[Row]:
    """Grade every notebook under ``folder`` (see :func:`find_submissions`); rows in submission order."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be a positive int (seconds per cell), got {timeout!r}")
    folder = Path(folder)
    work = [(student, str(path), path.relative_to(folder).as_posix(), timeout, kernel_name)
            for student, path in find_submissions(folder)]
    if not work:
        raise ValueError(f"no .ipynb files under {str(folder)!r}")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(work), desc="grading", unit="notebook", disable=not progress)
    results: list[list[Row]] = []
    if jobs == 1:
        for job in work:
            results.append(_grade_job(job))
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for rows in pool.map(_grade_job, work):
                results.append(rows)
                bar.update(1)
    bar.close()
    return [row for rows in results for row in rows]


def write_csv(rows: Iterable[Row], out: Path) -> None:
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(r) for r in rows)


def summary(rows: Sequence[Row]) -> str:
    """One line per student: verdicts passed out of verdicts printed, and errors."""
    per: dict[str, dict[str, int]] = {}
    for r in rows:
        s = per.setdefault(r.student, {"pass": 0, "verdicts": 0, "errors": 0})
        if r.status in (PASS, FAIL, TODO):
            s["verdicts"] += 1
            s["pass"] += r.status == PASS
        elif r.status in (ERROR, TIMEOUT):
            s["errors"] += 1
    width = max(len(name) for name in per)
    return "\n".join(f"{name:<{width}}  {s['pass']:>3} / {s['verdicts']:<3} checks passed"
                     + (f", {s['errors']} cell error(s)" if s["errors"] else "") for name, s in per.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.checks.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted lab notebooks")
    parser.add_argument("--out", type=Path, default=None, help="CSV to write (default: SUBMISSIONS/../grades.csv)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a single cell may run (default 600)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once (default 1; at most your cores)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)
    try:
        rows = grade_folder(args.submissions, timeout=args.timeout, jobs=args.jobs, kernel_name=args.kernel)
    except ValueError as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.submissions.resolve().parent / "grades.csv"
    write_csv(rows, out)
    print(summary(rows))
    print(f"grade: {len(rows)} rows written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
