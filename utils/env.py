"""Environment helpers: seeding, device choice, Colab detection and the offline switch.

Explained in chapter 1 ("How to use this book"). Every notebook starts with
:func:`setup_notebook`, which seeds all random generators, picks the device and applies
the book's plotting style.

The **offline switch** is the single place that decides whether code may reach the
Hugging Face Hub. The book is offline by default (its tests run with no network); set the
environment variable ``LMHO_ONLINE=1`` or call :func:`set_online` *before* importing
``transformers`` to allow hub ids.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from utils._validate import IntIn, checked

__all__ = [
    "seed_everything",
    "get_device",
    "in_colab",
    "is_online",
    "set_online",
    "setup_notebook",
]

_HF_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@checked
def seed_everything(seed: IntIn(0, 2**32 - 1, text="an int seed in [0, 2**32)") = 0, *,
                   deterministic: bool = True) -> int:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and CUDA) with one number.

    Args:
        seed: a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels where they exist
            (``torch.use_deterministic_algorithms(True, warn_only=True)``).

    Returns:
        The seed, so that a notebook can print what it used.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0 or seed >= 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


@checked
def get_device(prefer: str | None = None) -> torch.device:
    """Return ``cuda`` when a GPU is present, else ``cpu``.

    Args:
        prefer: ``None`` (automatic), ``"cpu"`` or ``"cuda"``. Asking for ``"cuda"`` on a
            machine without a GPU raises a ``ValueError`` rather than failing later.
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(prefer, str):
        raise TypeError(f"prefer must be None, 'cpu' or 'cuda', got {type(prefer).__name__}")
    prefer = prefer.lower()
    if prefer == "cpu":
        return torch.device("cpu")
    if prefer == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("prefer='cuda' but no CUDA device is available; use prefer=None or 'cpu'")
        return torch.device("cuda")
    raise ValueError(f"prefer must be None, 'cpu' or 'cuda', got {prefer!r}")


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def is_online() -> bool:
    """True when the reader has allowed hub downloads (``LMHO_ONLINE=1`` or :func:`set_online`)."""
    return os.environ.get("LMHO_ONLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


@checked
def set_online(online: bool) -> None:
    """Flip the single offline switch of the book.

    Sets ``LMHO_ONLINE`` and the Hugging Face variables (``HF_HUB_OFFLINE``,
    ``TRANSFORMERS_OFFLINE``, ``HF_DATASETS_OFFLINE``). Call it before importing
    ``transformers``: the hub library reads these variables when it is imported.
    """
    if not isinstance(online, bool):
        raise TypeError(f"online must be a bool, got {type(online).__name__}")
    os.environ["LMHO_ONLINE"] = "1" if online else "0"
    for var in _HF_OFFLINE_VARS:
        os.environ[var] = "0" if online else "1"


def _use_retina_figures() -> bool:
    """In a Jupyter kernel, emit inline figures as 2x PNG ("retina"): the published book and
    JupyterLab show them at their normal size, sharp on high-resolution screens. Returns False
    outside a kernel (plain Python, unit tests), where there is nothing to do."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or "IPKernelApp" not in getattr(shell, "config", {}):
        return False
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return False
    set_matplotlib_formats("retina")
    return True


@checked
def setup_notebook(seed: IntIn(0, 2**32 - 1, text="an int seed in [0, 2**32)") = 0, *, style: bool = True,
                   quiet_hub: bool = True) -> torch.device:
    """One call at the top of every notebook.

    Seeds everything, applies the offline switch (offline unless ``LMHO_ONLINE=1``),
    silences the hub's download progress bars, applies the book's plotting style (with
    figures sharp on high-resolution screens) and returns the device to use.
    """
    seed_everything(seed)
    set_online(is_online())
    if quiet_hub:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if style:
        from utils.plotting import use_book_style

        use_book_style()
        _use_retina_figures()
    return get_device()
