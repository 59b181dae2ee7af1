"""Root pytest plugin: record how long each notebook takes, for the "CPU run time" lines.

Sums the setup, call and teardown durations of every nbval cell per notebook (with xdist the
reports arrive at the controller) and writes ``test-artifacts/notebook_durations.json``;
``python tools/nbtools.py runtimes test-artifacts/notebook_durations.json`` then rewrites each
notebook's stated run time from these measurements.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_durations: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _durations[path] += report.duration


def pytest_sessionfinish(session, exitstatus) -> None:
    if not _durations or hasattr(session.config, "workerinput"):  # only the controller writes
        return
    out = _ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "notebook_durations.json").write_text(json.dumps(dict(sorted(_durations.items())), indent=1))


def pytest_collection_modifyitems(session, config, items) -> None:
    """nbval waits only 5 s (hard-coded) for a cell's outputs after the kernel has replied; on a busy
    2-core CI machine (two kernels and a browser at once) that gap can exceed 5 s and fail a cell
    that ran fine. Give it 60 s."""
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60
