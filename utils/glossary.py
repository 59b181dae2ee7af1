"""The book's glossary: English term, Chinese term (中文), one-line definition.

The entries live in ``utils/resources/glossary/*.csv`` (one file per part of the book, columns
``term,zh,definition,chapter``) so that each chapter extends the glossary without touching
the others. The appendix page renders them; chapter 5's semantic search indexes them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from utils._validate import checked

__all__ = ["GlossaryEntry", "load_glossary", "glossary_markdown"]


@checked
@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    zh: str
    definition: str
    chapter: str


def load_glossary() -> list[GlossaryEntry]:
    """All entries, sorted by English term (case-insensitive). Raises ``ValueError`` on an
    incomplete row or on a term defined twice, naming the file."""
    folder = resources.files("utils") / "resources" / "glossary"
    entries: dict[str, GlossaryEntry] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".csv"):
            continue
        with item.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != ["term", "zh", "definition", "chapter"]:
                raise ValueError(f"{item.name}: header must be term,zh,definition,chapter, got {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                values = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not all(values.get(k) for k in ("term", "zh", "definition", "chapter")):
                    raise ValueError(f"{item.name}, line {line}: every column must be filled, got {row}")
                key = values["term"].lower()
                if key in entries:
                    raise ValueError(f"{item.name}, line {line}: term {values['term']!r} is already defined "
                                     f"(chapter {entries[key].chapter})")
                entries[key] = GlossaryEntry(**values)
    return sorted(entries.values(), key=lambda e: e.term.lower())


@checked
def glossary_markdown(entries: list[GlossaryEntry] | None = None) -> str:
    """A Markdown table of the glossary (for the appendix page)."""
    entries = load_glossary() if entries is None else entries
    rows = ["| English | 中文 | Definition | Chapter |", "|---|---|---|---|"]
    esc = lambda s: s.replace("|", "\\|")
    rows += [f"| **{esc(e.term)}** | {esc(e.zh)} | {esc(e.definition)} | {esc(e.chapter)} |" for e in entries]
    return "\n".join(rows)
