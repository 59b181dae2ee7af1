"""Generate the learner copy of every lab from its single source, the instructor copy.

    python tools/make_labs.py          # write labs/NN_name.ipynb from labs/solutions/NN_name.ipynb
    python tools/make_labs.py --check  # exit 1 if a learner copy is out of date (CI runs this)

Markers in ``labs/solutions/*.ipynb`` (the instructor copy, which CI runs in strict mode):

- In a code cell, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` are the
  answer. The learner copy gets ``raise NotImplementedError("...")`` at the same indentation,
  or, if the block holds lines ``# STUB: <code>``, those lines of code instead.
- In a markdown cell, text between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``
  is removed from the learner copy.
- A cell tagged ``solution-only`` (for example ``set_strict(True)``) is dropped.

The learner copy's outputs are cleared: it is meant to be run by the learner.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "labs" / "solutions"
LEARNER = ROOT / "labs"
BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STUB = re.compile(r"^\s*# STUB: ?(.*)$")
MD_BLOCK = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.S)
STUB_MESSAGE = 'raise NotImplementedError("Exercise: write your code here")'


def strip_code(source: str) -> str:
    """Replace each solution block of a code cell by its stub."""
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if not m:
            if END.match(lines[i]):
                raise ValueError(f"'# END SOLUTION' without BEGIN in:\n{source}")
            out.append(lines[i])
            i += 1
            continue
        indent, block = m.group(1), []
        i += 1
        while i < len(lines) and not END.match(lines[i]):
            block.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"'# BEGIN SOLUTION' without END in:\n{source}")
        i += 1  # skip END
        stubs = [STUB.match(b).group(1) for b in block if STUB.match(b)]
        if stubs:
            out.extend(indent + s for s in stubs)
        else:
            out.append(indent + STUB_MESSAGE)
    return "\n".join(out)


def learner_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    learner = copy.deepcopy(nb)
    cells = []
    for cell in learner.cells:
        if "solution-only" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = MD_BLOCK.sub("", cell.source)
        cells.append(cell)
    learner.cells = cells
    return learner


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    sources = sorted(SOLUTIONS.glob("*.ipynb"))
    stale = []
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        text = render(learner_copy(nb))
        dest = LEARNER / src.name
        if dest.exists() and dest.read_text() == text:
            continue
        stale.append(dest.relative_to(ROOT).as_posix())
        if not check:
            dest.write_text(text)
    if check:
        if stale:
            print("out of date (run python tools/make_labs.py):\n  " + "\n  ".join(stale))
            return 1
        print(f"{len(sources)} learner copies are up to date")
        return 0
    print("\n".join(f"wrote {s}" for s in stale) or "nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
