import csv
import importlib.util
from collections import Counter
from pathlib import Path

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
