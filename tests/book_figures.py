"""Count figures: those a notebook draws and those its published page shows.

A notebook "draws" a figure when one of its outputs is an image that the HTML builder renders
as an image (an output that also carries a higher-ranked mime type, such as a widget's static
counterpart in ``text/html``, is shown as that instead), in a cell the book does not remove.
The published page "shows" it as an ``<img>`` inside a cell output whose file myst-nb wrote to
``_images/``. Used by the browser test (per page, on the book built from stored outputs) and by
the README-path build test (``scripts/book.sh``, notebooks executed).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
IMAGE_MIMES = ("image/png", "image/svg+xml", "image/jpeg", "image/gif")
REMOVED_TAGS = {"remove-cell", "remove-output", "remove_cell", "remove_output"}


def html_priority() -> dict[str, int]:
    """myst-nb's mime priority for the html builder with the book's overrides (lower wins)."""
    from myst_nb.core.render import base_render_priority

    prio = dict(base_render_priority()["html"])
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    for builder, mime, value in cfg.get("nb_mime_priority_overrides", []):
        if builder in ("html", "*"):
            prio[mime] = value
    return prio


def figures_drawn(nb: nbformat.NotebookNode | Path) -> int:
    """Image outputs of ``nb`` that the HTML book renders as images."""
    if isinstance(nb, Path):
        nb = nbformat.read(nb, as_version=4)
    prio = html_priority()
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or REMOVED_TAGS & set(cell.metadata.get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            mimes = [m for m in out.get("data", {}) if prio.get(m) is not None]
            if mimes and min(mimes, key=prio.__getitem__) in IMAGE_MIMES:
                count += 1
    return count


def figures_published(page: Path) -> int:
    """``<img>`` elements inside the cell outputs of a built page that point into ``_images/``."""
    soup = BeautifulSoup(page.read_text(), "html.parser")
    return sum(1 for div in soup.select("div.cell_output") for img in div.find_all("img")
               if "_images/" in (img.get("src") or ""))
