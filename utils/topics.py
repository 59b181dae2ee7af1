"""The book's sentence-topic data set: which part of the book does a sentence belong to?

Used by chapter 4's notebook on fine-tuning a pretrained encoder and by the lab
``labs/05_finetune_encoder.ipynb``. The sentences are the book's own glossary definitions and
FAQ answers, labelled with the topic of the part of the book that explains them, plus 16
hand-written sentences about CNNs (that part of the glossary is too small to make a class).
``tools/make_topic_dataset.py`` builds ``resources/topics/topic_sentences.csv`` (columns
``text,label,split,source``) with a fixed stratified train/test split; the file is frozen,
ships with the package and works offline.

:func:`load_topic_splits` adds a **validation** set, carved from the training sentences
(stratified, seeded), so that choices such as the number of epochs or the learning rate are
made on it and the test set is used once, at the end.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from importlib import resources

from utils._validate import FloatIn, Labels, Seed, Texts, checked

__all__ = ["TOPICS", "TOPIC_COLUMNS", "VAL_FRACTION", "TopicSplits", "load_topic_dataset", "load_topic_rows",
           "load_topic_splits"]

TOPICS = ("foundations", "training", "cnn", "attention-transformers", "applications")
TOPIC_COLUMNS = ["text", "label", "split", "source"]
VAL_FRACTION = 0.2  # of each topic's training sentences, held out for validation by load_topic_splits
OpenFraction = FloatIn(0.0, 1.0, lo_open=True, hi_open=True, text="a number in (0, 1)")


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


@checked
@dataclass(frozen=True)
class TopicSplits:
    """Train, validation and test sentences with integer labels (indices into ``label_names``)."""

    train_texts: Texts
    train_labels: Labels
    val_texts: Texts
    val_labels: Labels
    test_texts: Texts
    test_labels: Labels
    label_names: Texts


@checked
def load_topic_splits(val_fraction: OpenFraction = VAL_FRACTION, seed: Seed = 0) -> TopicSplits:
    """Train / validation / test: the fixed test set of :func:`load_topic_dataset` (46 sentences)
    and its 111 training sentences split again into training and validation.

    The validation split is stratified and deterministic, in the way the test split was made:
    for each topic, its training sentences are sorted by text, shuffled by ``random.Random(seed)``,
    and the first ``round(val_fraction * n)`` go to validation. With the defaults that is 89
    training and 22 validation sentences. Within each split, sentences keep their file order.

    Raises ``ValueError`` for a ``val_fraction`` outside (0, 1) or one that would leave a topic
    without training or validation sentences, and ``TypeError`` for a ``val_fraction`` that is not a
    number or a ``seed`` that is not an int (``ValueError`` for a negative one).
    """
    rows = load_topic_rows()
    val_texts: set[str] = set()
    for topic in TOPICS:
        group = sorted(r["text"] for r in rows if r["split"] == "train" and r["label"] == topic)
        random.Random(seed).shuffle(group)
        n_val = round(val_fraction * len(group))
        if not 0 < n_val < len(group):
            raise ValueError(f"val_fraction={val_fraction} puts {n_val} of the {len(group)} training sentences of "
                             f"topic {topic!r} in validation; each topic needs at least one in each split")
        val_texts.update(group[:n_val])
    parts: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for row in rows:
        name = "test" if row["split"] == "test" else ("val" if row["text"] in val_texts else "train")
        parts[name][0].append(row["text"])
        parts[name][1].append(TOPICS.index(row["label"]))
    return TopicSplits(*parts["train"], *parts["val"], *parts["test"], list(TOPICS))
