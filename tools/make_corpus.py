"""Build the book's own text corpus, ``utils/resources/corpus/book_prose.txt``.

The tokenizer and tiny-GPT chapters need English text that is on disk, offline, and ours to
ship: this script takes the prose of the book itself (the markdown cells of chapters 1-3, with
math, code, links and markup removed) plus the glossary definitions and FAQ answers, one
paragraph per line. The file is committed and frozen, so that results measured on it do not
move when a chapter is edited; run this script again only on purpose.

    python tools/make_corpus.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "utils" / "resources" / "corpus" / "book_prose.txt"
SOURCES = ["chapters/01_background", "chapters/02_concepts", "chapters/03_algorithms"]


def clean(md: str) -> list[str]:
    """Markdown cell -> plain-prose paragraphs (math, code, tables, links and markup removed)."""
    md = re.sub(r"```.*?```", " ", md, flags=re.S)           # code blocks and MyST directives
    md = re.sub(r"\$\$.*?\$\$", " ", md, flags=re.S)         # display math
    md = re.sub(r"\$[^$\n]+\$", "x", md)                     # inline math -> a placeholder word
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", md)            # images
    md = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", md)         # links keep their text
    md = re.sub(r"\{[a-z]+\}`([^`]*)`", r"\1", md)           # MyST roles
    md = re.sub(r"`([^`]*)`", r"\1", md)                     # inline code keeps its text
    md = re.sub(r"<[^>]+>", " ", md)                         # HTML tags
    paragraphs = []
    for block in re.split(r"\n\s*\n", md):
        lines = [ln for ln in block.splitlines() if not ln.lstrip().startswith(("|", "#", ":::", ">"))]
        text = " ".join(re.sub(r"^\s*([-*]|\d+\.)\s+", "", ln).strip() for ln in lines)
        text = re.sub(r"[*_]{1,3}([^*_]+)[*_]{1,3}", r"\1", text)
        text = re.sub(r"\s+", " ", text).strip()
        if len(text) >= 60 and text.count(" ") >= 8:
            paragraphs.append(text)
    return paragraphs


def main() -> None:
    paragraphs: list[str] = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    paragraphs += clean(cell.source)
    for path in sorted((ROOT / "utils" / "resources" / "glossary").glob("*.csv")):
        with path.open(encoding="utf-8") as f:
            paragraphs += [f"{row['term']} ({row['zh']}): {row['definition']}" for row in csv.DictReader(f)]
    with (ROOT / "utils" / "resources" / "faq.csv").open(encoding="utf-8") as f:
        paragraphs += [f"{row['question']} {row['answer']}" for row in csv.DictReader(f)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(paragraphs)} paragraphs, {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
