"""Shared pytest setup for the unit tests: offline and headless.

Only this process is changed: matplotlib draws with Agg here (no window for unit tests), chosen
with ``matplotlib.use`` rather than ``MPLBACKEND``, because an environment variable would be
inherited by the notebook kernels that nbval starts in the same run, and with ``MPLBACKEND=Agg``
a kernel's ``plt.show()`` emits no figure: the notebooks would not run as readers run them.
"""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
