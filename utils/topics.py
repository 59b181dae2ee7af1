"""The book's sentence-topic data set: which part of the book does a sentence belong to?

Used by chapter 4's notebook on fine-tuning a pretrained encoder and by the lab
``labs/05_finetune_encoder.ipynb``. The sentences are the book's own glossary definitions and
FAQ answers, labelled with the topic of the part of the book that explains them, plus 16
hand-written sentences about CNNs (that part of the glossary is too small to make a class).
``tools/make_topic_dataset.py`` builds ``resources/topics/topic_sentences.csv`` (columns
``text,label,split,source``) with a fixed stratified train/test split; the file is frozen,
ships with the package and works offline.
"""

from __future__ import annotations

import csv
from importlib import resources

__all__ = ["TOPICS", "TOPIC_COLUMNS", "load_topic_dataset", "load_topic_rows"]

TOPICS = ("foundations", "training", "cnn", "attention-transformers", "applications")
TOPIC_COLUMNS = ["text", "label", "split", "source"]


def load_topic_rows() -> list[dict[str, str]]:
    """Every row of ``topic_sentences.csv`` as a dict with keys ``text, label, split, source``.

    Raises ``ValueError`` naming the line for a wrong header, an empty text, an unknown label
    or a split other than ``train``/``test``.
    """
    path = resources.files("utils") / "resources" / "topics" / "topic_sentences.csv"
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != TOPIC_COLUMNS:
            raise ValueError(f"topic_sentences.csv: header must be {','.join(TOPIC_COLUMNS)}, "
                             f"got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            if not (row.get("text") or "").strip():
                raise ValueError(f"topic_sentences.csv, line {line}: empty text")
            if row["label"] not in TOPICS:
                raise ValueError(f"topic_sentences.csv, line {line}: label must be one of {TOPICS}, "
                                 f"got {row['label']!r}")
            if row["split"] not in ("train", "test"):
                raise ValueError(f"topic_sentences.csv, line {line}: split must be 'train' or 'test', "
                                 f"got {row['split']!r}")
            rows.append(row)
    return rows


def load_topic_dataset() -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """The fixed split as ``(train_texts, train_labels, test_texts, test_labels, label_names)``.

    Labels are integer indices into ``label_names`` (= :data:`TOPICS`, in that order). 111
    training and 46 test sentences; every topic is in both splits in the same proportion.
    """
    train_texts, train_labels, test_texts, test_labels = [], [], [], []
    for row in load_topic_rows():
        texts, labels = (train_texts, train_labels) if row["split"] == "train" else (test_texts, test_labels)
        texts.append(row["text"])
        labels.append(TOPICS.index(row["label"]))
    return train_texts, train_labels, test_texts, test_labels, list(TOPICS)
