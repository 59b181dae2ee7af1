"""The book's FAQ as data: one validated table that the FAQ page renders and the semantic
search of chapter 5.1 indexes.

The entries live in ``utils/resources/faq.csv`` (columns ``id,question,answer,chapter``).
``id`` is a short lowercase slug (``gpu-needed``) used to cite an entry, for example as the
relevant document of a labelled search query (``faq:gpu-needed``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from collections.abc import Iterable
from importlib import resources

from utils._validate import checked

__all__ = ["FaqEntry", "FAQ_COLUMNS", "load_faq", "parse_faq", "faq_markdown"]

FAQ_COLUMNS = ["id", "question", "answer", "chapter"]
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@checked
@dataclass(frozen=True)
class FaqEntry:
    """One question with its answer; ``chapter`` is the chapter number that explains it."""

    id: str
    question: str
    answer: str
    chapter: int


@checked
def parse_faq(lines: Iterable[str], source: str = "faq.csv") -> list[FaqEntry]:
    """Parse and validate FAQ rows from an iterable of CSV lines (the header included).

    Raises ``ValueError`` naming ``source`` and the line for a wrong header, an empty field,
    an id that is not a lowercase slug, a duplicated id or question, a question without a
    question mark, or a chapter that is not an integer from 1 to 7.
    """
    reader = csv.DictReader(lines)
    if reader.fieldnames != FAQ_COLUMNS:
        raise ValueError(f"{source}: header must be {','.join(FAQ_COLUMNS)}, got {reader.fieldnames}")
    entries: list[FaqEntry] = []
    seen_ids: set[str] = set()
    seen_questions: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise ValueError(f"{source}, line {line}: expected {len(FAQ_COLUMNS)} columns, got more")
        values = {k: (v or "").strip() for k, v in row.items()}
        empty = [k for k in FAQ_COLUMNS if not values[k]]
        if empty:
            raise ValueError(f"{source}, line {line}: column(s) {empty} must not be empty")
        if not _SLUG.match(values["id"]):
            raise ValueError(f"{source}, line {line}: id must be a lowercase slug like 'gpu-needed', "
                             f"got {values['id']!r}")
        if values["id"] in seen_ids:
            raise ValueError(f"{source}, line {line}: id {values['id']!r} is used twice")
        if values["question"].lower() in seen_questions:
            raise ValueError(f"{source}, line {line}: question {values['question']!r} is asked twice")
        if not values["question"].endswith("?"):
            raise ValueError(f"{source}, line {line}: question must end with '?', got {values['question']!r}")
        if not values["chapter"].isdigit() or not 1 <= int(values["chapter"]) <= 7:
            raise ValueError(f"{source}, line {line}: chapter must be an integer from 1 to 7, "
                             f"got {values['chapter']!r}")
        seen_ids.add(values["id"])
        seen_questions.add(values["question"].lower())
        entries.append(FaqEntry(values["id"], values["question"], values["answer"], int(values["chapter"])))
    if not entries:
        raise ValueError(f"{source}: no FAQ entries")
    return entries


def load_faq() -> list[FaqEntry]:
    """All FAQ entries in file order (grouped by chapter), validated by :func:`parse_faq`."""
    path = resources.files("utils") / "resources" / "faq.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return parse_faq(fh, source="faq.csv")


@checked
def faq_markdown(entries: list[FaqEntry] | None = None) -> str:
    """The FAQ as Markdown: one ``###`` heading per question, grouped under chapter headings."""
    entries = load_faq() if entries is None else entries
    out: list[str] = []
    chapter = None
    for e in sorted(entries, key=lambda e: e.chapter):  # stable: keeps file order within a chapter
        if e.chapter != chapter:
            chapter = e.chapter
            out.append(f"## Chapter {chapter}\n")
        out.append(f"### {e.question}\n\n{e.answer} *(id: `{e.id}`)*\n")
    return "\n".join(out)
