"""Binder, reproduced in a fresh virtualenv: exactly the files of binder/ are installed the way repo2docker
installs them, and the first chapter a learner opens then runs there.

repo2docker reads ``binder/runtime.txt`` (Python 3.11: the tests run on 3.11), runs
``pip install -r binder/requirements.txt`` and then ``binder/postBuild`` in the repository's root. This test
does the same, in a copy of the repository's files, with one substitution: the line
``--extra-index-url https://download.pytorch.org/whl/cpu`` becomes ``--find-links <folder>``, the folder on
this machine that holds the same file that index serves, ``torch-2.13.0+cpu-cp311-...whl`` (these machines
cannot reach download.pytorch.org). pip's cache is used for the requirements (repo2docker passes
``--no-cache-dir``, which changes what is downloaded, not what is installed); postBuild runs unchanged.

Checked: torch is the CPU build; no developer package (pytest, nbval, jupyter-book, playwright) is
installed; postBuild's ``python -m utils.env_check --require learner`` passes; the chapter "How to use this
book" runs top to bottom in the new environment. The time of each phase is printed (``pytest -s``).
"""

import sys

import nbformat
import pytest

from launch_env import (CPU_INDEX_LINE, ROOT, Timer, copy_tree, local_torch_wheel_dir, make_venv, outputs_text,
                        pip_install, run, run_notebooks, venv_env)

CHAPTER = "chapters/01_background/02_how_to_use_this_book.ipynb"  # runs env_check, seeds, a checker demo
DEVELOPER_ONLY = ["pytest", "nbval", "jupyter-book", "playwright", "sphinxcontrib-bibtex", "jupytext"]

WHEELS = local_torch_wheel_dir()
pytestmark = pytest.mark.skipif(WHEELS is None,
                                reason="no local torch 2.13.0 CPU wheel for Python 3.11 among pip's find-links")


def test_binder_files_declare_python_311_and_the_cpu_index():
    assert (ROOT / "binder/runtime.txt").read_text().strip() == "python-3.11"
    lines = [ln.strip() for ln in (ROOT / "binder/requirements.txt").read_text().splitlines()]
    assert CPU_INDEX_LINE in lines
    assert "-r ../requirements.txt" in lines  # the learner set, not requirements-dev.txt
    assert not any("requirements-dev" in ln for ln in lines)
    assert (ROOT / "binder/postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_binder_like_environment_installs_learner_packages_and_runs_a_chapter(tmp_path):
    timer = Timer()
    tree = copy_tree(tmp_path / "repo", ["binder", "requirements.txt", "pyproject.toml", "README.md", "utils"])
    req = tree / "binder/requirements.txt"
    text = req.read_text()
    assert text.count(CPU_INDEX_LINE) == 1
    req.write_text(text.replace(CPU_INDEX_LINE, f"--find-links {WHEELS}"))  # the stand-in for the CPU index
    python = make_venv(tmp_path / "binder-venv")
    env = venv_env(python, tmp_path)
    pip_install(python, ["-r", "binder/requirements.txt"], env=env, cwd=tree)
    timer.lap("pip install -r binder/requirements.txt")
    post = run(["bash", "binder/postBuild"], env=env, cwd=tree)
    timer.lap("binder/postBuild")
    assert "learner packages (requirements.txt)" in post and "MISSING" not in post and "FAIL" not in post

    probe = ("import importlib.metadata as md, json, torch\n"
             "names = " + repr(DEVELOPER_ONLY) + "\n"
             "def has(n):\n"
             "    try:\n        md.version(n)\n        return True\n"
             "    except md.PackageNotFoundError:\n        return False\n"
             "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
             "'dev': [n for n in names if has(n)], 'package': md.version('large-models-hands-on')}))")
    info = __import__("json").loads(run([str(python), "-c", probe], env=env).strip().splitlines()[-1])
    assert info["torch"] == "2.13.0+cpu" and info["cuda"] is None
    assert info["dev"] == [], "Binder installs learner packages only"

    src = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.read(ROOT / CHAPTER, as_version=4), src)
    out = tmp_path / "chapter.out.ipynb"
    run_notebooks(python, [(src, out)], env=env, tmp=tmp_path)
    timer.lap("run the chapter")
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(outputs_text(c) for c in nb.cells)
    assert "Installing" not in text  # the setup cell found the package that postBuild installed
    assert "OK       torch" in text and "Traceback" not in text
    print(f"\nBinder-like run: {timer.report()}; Python {sys.version.split()[0]}, torch {info['torch']}")
