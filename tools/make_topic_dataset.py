"""Build the book's sentence-topic data set, ``utils/resources/topics/topic_sentences.csv``.

Chapter 4's fine-tuning notebook and lab need a small labelled text-classification task that
is on disk, offline and ours to ship. This script makes one from the book itself:

- every glossary definition (``utils/resources/glossary/*.csv``) and every FAQ answer
  (``utils/resources/faq.csv``) becomes one example, labelled with the **topic of the part of
  the book that explains it**, read from the ``chapter`` column (see ``GLOSSARY_TOPICS`` and
  ``FAQ_TOPICS``). Rows whose chapter has no single topic are left out and listed;
- the CNN part of the glossary has only 14 entries, too few to learn and test a class on, so
  ``utils/resources/topics/handwritten_extra.csv`` adds 16 sentences about convolutional
  networks written by hand for this data set (their ``source`` is ``handwritten``);
- each class is split deterministically into train and test (stratified: 30 % of every class,
  rounded, goes to test; the order within a class is a ``random.Random(0)`` shuffle of the
  rows sorted by text, so the split depends on nothing but the rows).

The output has columns ``text,label,split,source`` (``source`` names the row's origin:
``glossary:<term>``, ``faq:<id>`` or ``handwritten``). The file is committed and frozen, so
results measured on it do not move when the glossary grows; run this script again only on
purpose, and re-measure the notebooks that use it.

    python tools/make_topic_dataset.py
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "utils" / "resources"
OUT = RESOURCES / "topics" / "topic_sentences.csv"
EXTRA = RESOURCES / "topics" / "handwritten_extra.csv"
TOPICS = ("foundations", "training", "cnn", "attention-transformers", "applications")
TEST_FRACTION = 0.3
SEED = 0

# Glossary ``chapter`` -> topic. The glossary writes the attention/Transformer chapters as "3"
# (file 03d_attention.csv) and the training and CNN chapters as "3.1"/"3.3" and "3.2".
# Left out: "4.1" (two practice-chapter terms, SVM and safetensors, that belong to no topic).
GLOSSARY_TOPICS = {"1": "foundations", "2": "foundations", "3.1": "training", "3.3": "training",
                   "3.2": "cnn", "3": "attention-transformers", "5": "applications"}

# FAQ ``chapter`` -> topic. Chapter 3 holds training, CNNs, RNNs and attention and chapter 4 is
# practice, so their entries are labelled one by one (FAQ_BY_ID); chapter 7 (resources) is left out.
FAQ_TOPICS = {1: "foundations", 2: "foundations", 5: "applications", 6: "foundations"}
FAQ_BY_ID = {
    "overfit-sign": "training", "lr-choice": "training", "loss-nan": "training",
    "logits-softmax": "training", "gru-gates": "training", "eval-mode": "training",
    "attention-scale": "attention-transformers", "posenc-why": "attention-transformers",
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def collect() -> tuple[list[dict[str, str]], list[str]]:
    """All labelled rows (``text, label, source``) and a list of the rows left out, with why."""
    rows, skipped = [], []
    for path in sorted((RESOURCES / "glossary").glob("*.csv")):
        for r in _read(path):
            topic = GLOSSARY_TOPICS.get(r["chapter"].strip())
            if topic is None:
                skipped.append(f"glossary:{r['term']} (chapter {r['chapter']})")
                continue
            rows.append({"text": r["definition"].strip(), "label": topic, "source": f"glossary:{r['term']}"})
    for r in _read(RESOURCES / "faq.csv"):
        topic = FAQ_BY_ID.get(r["id"]) or FAQ_TOPICS.get(int(r["chapter"]))
        if topic is None:
            skipped.append(f"faq:{r['id']} (chapter {r['chapter']})")
            continue
        rows.append({"text": r["answer"].strip(), "label": topic, "source": f"faq:{r['id']}"})
    for r in _read(EXTRA):
        rows.append({"text": r["text"].strip(), "label": r["label"].strip(), "source": "handwritten"})
    bad = sorted({r["label"] for r in rows} - set(TOPICS))
    if bad:
        raise ValueError(f"unknown labels {bad}; expected one of {TOPICS}")
    texts = Counter(r["text"] for r in rows)
    dupes = [t for t, n in texts.items() if n > 1]
    if dupes:
        raise ValueError(f"duplicate texts would leak between train and test: {dupes[:3]}")
    return rows, skipped


def split(rows: list[dict[str, str]], test_fraction: float = TEST_FRACTION,
          seed: int = SEED) -> list[dict[str, str]]:
    """Stratified deterministic split: ``round(test_fraction * n)`` rows of each class go to test."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    out = []
    for label in TOPICS:
        group = sorted(by_label[label], key=lambda r: r["text"])
        random.Random(seed).shuffle(group)
        n_test = round(test_fraction * len(group))
        out += [{**r, "split": "test" if i < n_test else "train"} for i, r in enumerate(group)]
    return sorted(out, key=lambda r: (r["split"] != "train", TOPICS.index(r["label"]), r["source"]))


def main() -> None:
    rows, skipped = collect()
    rows = split(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "split", "source"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts = Counter((r["label"], r["split"]) for r in rows)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(rows)} sentences")
    for t in TOPICS:
        print(f"  {t:>22}: {counts[t, 'train']:3d} train, {counts[t, 'test']:3d} test")
    print("left out (no single topic): " + ", ".join(skipped))


if __name__ == "__main__":
    main()
