import csv
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from utils import topics

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("make_topic_dataset", ROOT / "tools" / "make_topic_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_sizes_labels_and_no_leak():
    tr_x, tr_y, te_x, te_y, names = topics.load_topic_dataset()
    assert names == list(topics.TOPICS)
    assert (len(tr_x), len(te_x)) == (111, 46)
    assert len(tr_y) == len(tr_x) and len(te_y) == len(te_x)
    assert set(tr_y) == set(te_y) == set(range(len(names)))
    assert not set(tr_x) & set(te_x)  # no sentence in both splits
    assert all(isinstance(t, str) and t for t in tr_x + te_x)


def test_split_is_stratified_about_30_percent_per_topic():
    _, tr_y, _, te_y, names = topics.load_topic_dataset()
    train, test = Counter(tr_y), Counter(te_y)
    for k in range(len(names)):
        total = train[k] + test[k]
        assert total >= 20, f"{names[k]} has only {total} sentences"
        assert test[k] == round(0.3 * total)


def test_every_row_states_its_origin():
    sources = Counter(r["source"].split(":")[0] for r in topics.load_topic_rows())
    assert set(sources) == {"glossary", "faq", "handwritten"}
    assert sources["handwritten"] == 16


def test_stored_split_is_what_the_script_makes_from_the_stored_rows():
    builder = _builder()
    stored = topics.load_topic_rows()
    rows = [{k: r[k] for k in ("text", "label", "source")} for r in stored]
    rebuilt = builder.split(rows)
    assert sorted((r["text"], r["split"]) for r in rebuilt) == sorted((r["text"], r["split"]) for r in stored)
    assert builder.TOPICS == topics.TOPICS
    # the frozen file may lag the glossary, but never invents a label the mapping would not give
    for r in stored:
        if r["source"].startswith("glossary:"):
            assert r["label"] in builder.GLOSSARY_TOPICS.values()


def test_split_is_deterministic_and_depends_on_the_seed():
    builder = _builder()
    rows = [{"text": f"s{i}", "label": t, "source": "x"} for t in topics.TOPICS for i in range(10)]
    a, b, c = builder.split(rows, seed=0), builder.split(rows, seed=0), builder.split(rows, seed=1)
    assert a == b and a != c
    assert Counter(r["split"] for r in a) == {"train": 35, "test": 15}


def test_handwritten_extra_is_marked_and_labelled():
    with (ROOT / "utils" / "resources" / "topics" / "handwritten_extra.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["label"] in topics.TOPICS for r in rows)


def test_validation_split_is_carved_from_train_stratified_and_leaves_test_alone():
    tr_x, tr_y, te_x, te_y, names = topics.load_topic_dataset()
    s = topics.load_topic_splits()
    assert (len(s.train_texts), len(s.val_texts), len(s.test_texts)) == (89, 22, 46)
    assert (s.test_texts, s.test_labels, s.label_names) == (te_x, te_y, names)  # the test set does not move
    assert sorted(zip(s.train_texts + s.val_texts, s.train_labels + s.val_labels)) == sorted(zip(tr_x, tr_y))
    assert not set(s.train_texts) & set(s.val_texts)
    train, val = Counter(tr_y), Counter(s.val_labels)
    for k in range(len(names)):
        assert val[k] == round(topics.VAL_FRACTION * train[k]) >= 1  # every topic in every split
    order = {t: i for i, t in enumerate(tr_x)}
    assert [order[t] for t in s.val_texts] == sorted(order[t] for t in s.val_texts)  # file order kept


def test_validation_split_is_deterministic_and_depends_on_the_seed():
    a, b, c = topics.load_topic_splits(), topics.load_topic_splits(seed=0), topics.load_topic_splits(seed=1)
    assert a == b and a.val_texts != c.val_texts
    assert len(topics.load_topic_splits(val_fraction=0.5).val_texts) == 54  # 14 + 12 + 10 + 8 + 10: round half to even


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(val_fraction=0.0), ValueError, "val_fraction must be a number in \\(0, 1\\)"),
    (dict(val_fraction=1.5), ValueError, "val_fraction must be a number in \\(0, 1\\)"),
    (dict(val_fraction="0.2"), TypeError, "val_fraction must be a number in \\(0, 1\\)"),
    (dict(val_fraction=0.01), ValueError, "at least one in each split"),
    (dict(val_fraction=0.99), ValueError, "at least one in each split"),
    (dict(seed=1.5), TypeError, "seed must be a non-negative int"),
])
def test_validation_split_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        topics.load_topic_splits(**kwargs)
