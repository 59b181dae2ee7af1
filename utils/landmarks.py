"""Parameter counts of landmark neural networks, with the source of each figure.

Used by chapter 1 (the parameter-count plot) and chapter 6 (trends). Only figures that the
cited paper states are included: models whose size was never published (GPT-4, for example)
are deliberately absent, and sparse mixture-of-experts models are left out because their
"parameter count" is not comparable with a dense model's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

from utils._validate import checked

__all__ = ["LandmarkModel", "load_landmark_models", "growth_per_year"]


@checked
@dataclass(frozen=True)
class LandmarkModel:
    model: str
    year: int
    parameters: int
    kind: str
    source: str


def load_landmark_models() -> list[LandmarkModel]:
    """The table in ``utils/resources/landmark_models.csv``, sorted by year then size."""
    path = resources.files("utils") / "resources" / "landmark_models.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [LandmarkModel(r["model"], int(r["year"]), int(r["parameters"]), r["kind"], r["source"])
                for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda m: (m.year, m.parameters))


@checked
def growth_per_year(models: list[LandmarkModel], start: int, end: int) -> float:
    """Factor by which the parameter count grew per year between ``start`` and ``end``
    (inclusive), from a least-squares line through log10(parameters) against year."""
    if not isinstance(start, int) or not isinstance(end, int) or start >= end:
        raise ValueError(f"start and end must be ints with start < end, got {start!r}, {end!r}")
    sel = [m for m in models if start <= m.year <= end]
    if len(sel) < 2:
        raise ValueError(f"need at least two models between {start} and {end}, got {len(sel)}")
    years = np.array([m.year for m in sel], dtype=float)
    logp = np.log10([m.parameters for m in sel])
    slope = np.polyfit(years, logp, 1)[0]
    return float(10 ** slope)
