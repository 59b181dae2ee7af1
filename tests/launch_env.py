"""Helpers for the launch-path tests (test_launch_colab.py, test_launch_binder.py): fresh virtual
environments, a copy of the package's files, and a notebook runner that runs inside such an environment.

pip runs with this machine's configuration and its cache (a second run reuses the downloaded and built
wheels); ``--no-compile`` skips writing .pyc files for every installed module, which Python writes
lazily on import anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_WHEEL = re.compile(r"torch-2\.13\.0\+cpu-cp311-cp311-[^/]*\.whl$")
CPU_INDEX_LINE = "--extra-index-url https://download.pytorch.org/whl/cpu"

# The driver that runs notebooks inside a fresh environment (its own nbclient and kernel).
_DRIVER = r'''
import sys, nbformat
from nbclient import NotebookClient
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(__import__("pathlib").Path(src).parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, dst)
'''


class Timer:
    """Wall time per phase, printed at the end of a test (``pytest -s`` or on failure)."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases.append((name, now - self._start))
        self._start = now

    def report(self) -> str:
        total = sum(s for _, s in self.phases)
        return ", ".join(f"{n} {s:.0f} s" for n, s in self.phases) + f"; total {total:.0f} s"


def local_torch_wheel_dir() -> Path | None:
    """The folder holding ``torch-2.13.0+cpu`` for Python 3.11 among pip's ``find-links`` locations
    (this machine's stand-in for PyTorch's CPU wheel index, which it cannot reach), or None."""
    places = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=60).stdout
        places += [p for line in out.splitlines() if "find-links" in line
                   for p in line.split("=", 1)[1].strip().strip("'\"").split()]
    except (OSError, subprocess.SubprocessError):
        pass
    for place in places:
        folder = Path(place.removeprefix("file://"))
        if folder.is_dir() and any(TORCH_WHEEL.search(p.name) for p in folder.iterdir()):
            return folder
    return None


def requirement_pins(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """``name -> requirement line`` for the plain requirement lines of ``path`` (comments, options skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            pins[re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower()] = line
    return pins


def copy_tree(dest: Path, paths: list[str]) -> Path:
    """Copy the files git would commit under ``paths`` (tracked, or new and not ignored) from the working
    tree to ``dest``: what a clone of the repository would hold, with uncommitted edits."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *paths], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def make_venv(path: Path) -> Path:
    """A fresh virtual environment of the Python running the tests (3.11) with a current pip (as Colab and
    repo2docker have; it also shares the cache format of the pip that filled the cache); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"],
                   check=True, capture_output=True, timeout=300)
    return python


def venv_env(python: Path, tmp: Path) -> dict[str, str]:
    """Environment for commands in the fresh venv: its bin first, no user-wide Jupyter kernels, offline hub."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND")}
    env.update(PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(python.parent.parent),
               JUPYTER_DATA_DIR=str(tmp / "jupyter-data"), JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: int = 900) -> str:
    """Run ``cmd``; on failure, fail with the tail of its output."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-4000:]}")
    return out


def pip_install(python: Path, args: list[str], *, env: dict[str, str], cwd: Path | None = None) -> str:
    return run([str(python), "-m", "pip", "install", "-q", "--no-compile", *args], env=env, cwd=cwd)


def run_notebooks(python: Path, pairs: list[tuple[Path, Path]], *, env: dict[str, str], tmp: Path) -> None:
    """Execute each ``(source, destination)`` notebook with nbclient inside the venv of ``python``."""
    driver = tmp / "run_notebooks.py"
    driver.write_text(_DRIVER)
    run([str(python), str(driver), *[str(p) for pair in pairs for p in pair]], env=env, timeout=1500)


def outputs_text(cell) -> str:
    """Everything a cell printed (streams, text/plain and error tracebacks)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
        else:
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)
