"""Content guard for parts 4-7 and the appendix: the errors an expert review found (issue 16, review
part B) stay fixed.

Each test reads the text readers see (markdown and code of the notebooks, the FAQ and glossary
CSVs) and fails if a corrected statement comes back, or if a correction disappears. The patterns are
deliberately narrow: they match the wrong statement, not the topic, so the text around them can
still be rewritten freely.
"""

from __future__ import annotations

import ast
import builtins
import csv
import json
import re
import symtable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CH = ROOT / "chapters"
PRACTICE = {
    "cnn": CH / "04_practice" / "01_cnn_end_to_end.ipynb",
    "finetune": CH / "04_practice" / "04_finetune_pretrained_encoder.ipynb",
    "pipelines": CH / "04_practice" / "06_pipelines_and_safe_saving.ipynb",
    "nlp": CH / "05_applications" / "01_nlp_classification_and_search.ipynb",
    "vision": CH / "05_applications" / "02_vision_digits.ipynb",
    "scaling": CH / "06_trends" / "01_scaling_laws.ipynb",
    "efficiency": CH / "06_trends" / "03_efficiency.ipynb",
    "future": CH / "06_trends" / "06_future_directions.ipynb",
    "frameworks": CH / "07_resources" / "01_frameworks_and_ecosystem.ipynb",
    "misconceptions": CH / "appendix" / "misconceptions.ipynb",
    "glossary": CH / "appendix" / "glossary.ipynb",
}
CHAPTERS_4_TO_7 = sorted(p for d in ("04_practice", "05_applications", "06_trends", "07_resources")
                         for p in (CH / d).glob("*.ipynb"))


def cells(path: Path, kind: str | None = None) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if kind is None or c["cell_type"] == kind]


def source(path: Path, kind: str | None = None) -> str:
    """All cell sources of ``kind`` (markdown, code or both), joined; newlines become spaces so that a
    phrase broken across lines still matches."""
    text = "\n".join("".join(c["source"]) for c in cells(path, kind))
    return re.sub(r"\s+", " ", text)


def outputs(path: Path) -> str:
    """The stored text outputs of every code cell."""
    out = []
    for c in cells(path, "code"):
        for o in c.get("outputs", []):
            out.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


FAQ = {r["id"]: r for r in read_csv(ROOT / "utils" / "resources" / "faq.csv")}
GLOSSARY = [r for p in sorted((ROOT / "utils" / "resources" / "glossary").glob("*.csv")) for r in read_csv(p)]
FAQ_TEXT = " ".join(f"{r['question']} {r['answer']}" for r in FAQ.values())


# (where, wrong statement as a regular expression, what is right instead)
WRONG = [
    ("vision", r"(hand)?written by 43 (people|writers)", "scikit-learn's digits are the UCI test set: 13 writers"),
    ("pipelines", r"train_bpe_tokenizer\(load_corpus\(\)", "the tokenizer learns from the training lines only"),
    ("pipelines", r"the API, the files and the loading, is the same",
     "a large model needs shards and an index, a dtype and a device placement"),
    ("pipelines", r"never (pass|use) `?trust_remote_code",
     "trust_remote_code only for code you have read, with the revision pinned"),
    ("finetune", r"\"val\" curve here is the test set", "the curves show a real validation set"),
    ("finetune", r"train_classifier\([^)]*test_texts", "no training run sees the test sentences"),
    ("scaling", r"The papers span about six orders of magnitude",
     "six orders for Kaplan et al., about two and a half for Chinchilla"),
    ("scaling", r"LLaMA[^.]*following Chinchilla", "LLaMA trained its small models far past compute-optimal"),
    ("scaling", r"two orders of magnitude instead of six", "a factor of 44 is 1.6 orders of magnitude"),
    ("future", r"parameter counts did not\b", "published dense parameter counts plateaued"),
    ("efficiency", r"GPTQ and AWQ keep those channels in higher precision",
     "GPTQ is second-order error compensation; LLM.int8() keeps outliers in float16; AWQ scales salient channels"),
    ("frameworks", r"loss_fn\(mlp\(p, x\), y\)\)\(params, x, y\)", "the JAX snippet defines everything it uses"),
]


@pytest.mark.parametrize("where, wrong, right", WRONG, ids=[f"{w}:{r[:30]}" for w, r, _ in WRONG])
def test_a_fixed_wrong_statement_does_not_come_back(where, wrong, right):
    text = source(PRACTICE[where])
    found = re.search(wrong, text)
    assert found is None, f"{PRACTICE[where].name} says {found.group(0)!r} again; right: {right}"


@pytest.mark.parametrize("path", CHAPTERS_4_TO_7 + [PRACTICE["misconceptions"]], ids=lambda p: p.name)
def test_no_chapter_of_parts_4_to_7_repeats_a_fixed_statement(path):
    text = source(path)
    for wrong in (r"(hand)?written by 43 (people|writers)", r"never (pass|use) `?trust_remote_code",
                  r"parameter counts did not\b", r"GPTQ[^.]{0,40}keep[^.]{0,40}higher precision",
                  r"\"val\" curve[^.]*is the test set"):
        assert re.search(wrong, text) is None, (path.name, wrong)


def test_the_corrections_are_there():
    vision, scaling = source(PRACTICE["vision"], "markdown"), source(PRACTICE["scaling"], "markdown")
    assert "13 people" in vision and "within-writer" in vision
    assert "Besiroglu et al. (2024" in scaling and "1.6 orders of magnitude" in scaling
    efficiency = source(PRACTICE["efficiency"], "markdown")
    assert re.search(r"GPTQ.{0,200}second-order", efficiency) and "SmoothQuant" in efficiency
    assert re.search(r"LLM\.int8\(\).{0,150}float16", efficiency) and re.search(r"AWQ.{0,200}activation", efficiency)
    future = source(PRACTICE["future"], "markdown")
    assert "published dense" in future and "Garg et al. (2022" in future
    pipelines = source(PRACTICE["pipelines"])
    assert "revision=" in pipelines and "max_shard_size" in pipelines and "device_map=\"auto\"" in pipelines


def test_tiny_gpt_trains_and_validates_on_windows_of_one_length():
    code = source(PRACTICE["pipelines"], "code")
    train = re.findall(r"get_batch\(train_ids, (\w+)", code)
    default = re.findall(r"def validation_loss\(model, data, block_size=(\w+)\)", code)
    assert train and default and set(train) == set(default), (train, default)


def test_fine_tuning_chapter_selects_on_validation_and_reports_test_once():
    finetune = PRACTICE["finetune"]
    code = source(finetune, "code")
    assert "load_topic_splits()" in code
    runs = re.findall(r"train_classifier\(([^)]*)\)", code)
    assert runs and all("val_texts" in r and "restore_best=True" in r for r in runs)
    exercises = source(finetune, "markdown").split("## Exercises")[-1]
    for n in (2, 4):
        item = re.search(rf"\b{n}\. (.*?)(?= \d\. |$)", exercises).group(1)
        assert "validation" in item, f"exercise {n} must choose on the validation set: {item}"


def test_the_two_tf_idf_baselines_are_named_apart():
    assert "words and word pairs" in source(PRACTICE["finetune"], "markdown")
    assert re.search(r"single words|unigrams", source(PRACTICE["nlp"], "markdown"))


def test_the_queries_cited_as_examples_are_printed():
    """05.01 quotes example queries after the cell that prints where the two searchers differ: each must be printed
    there (the review found one quoted query that the cell did not print)."""
    nlp = cells(PRACTICE["nlp"])
    cited_in = next(i for i, c in enumerate(nlp) if c["cell_type"] == "markdown"
                    and "The semantic search wins on paraphrases" in "".join(c["source"]))
    printed = "".join("".join(o.get("text", "")) for o in nlp[cited_in - 1].get("outputs", []))
    examples = re.sub(r"\s+", " ", "".join(nlp[cited_in]["source"])).split("wins on paraphrases (")[1].split("):")[0]
    quoted = re.findall(r'"([^"]+)"', examples)
    assert quoted and printed
    for q in quoted:
        assert all(part.strip() in printed for part in q.split("...")), f"{q!r} is cited but not printed"


def _undefined_names(code: str) -> set[str]:
    """Names a snippet reads but never defines (imports, assignments, defs, arguments) nor gets from builtins."""
    top = symtable.symtable(code, "<snippet>", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    missing, tables = set(), [top]
    while tables:
        table = tables.pop()
        tables += table.get_children()
        for s in table.get_symbols():
            if s.is_referenced() and s.is_global() and s.get_name() not in defined | set(dir(builtins)):
                missing.add(s.get_name())
    return missing


def test_undefined_name_check_catches_the_old_jax_line():
    assert _undefined_names("import jax\ng = jax.grad(lambda p, x, y: loss_fn(p, x, y))(params, x, y)") == {
        "loss_fn", "params", "x", "y"}
    assert _undefined_names("def f(a):\n    return a + b\nb = 1\nprint(f(2))") == set()


@pytest.mark.parametrize("where", ["frameworks", "misconceptions"])
def test_shown_python_snippets_define_what_they_use(where):
    blocks = re.findall(r"```python\n(.*?)```", "\n".join("".join(c["source"]) for c in
                                                        cells(PRACTICE[where], "markdown")), re.S)
    assert blocks
    for block in blocks:
        ast.parse(block)
        assert _undefined_names(block) == set(), block


def test_misconception_entries_for_the_source_article_gaps():
    text = source(PRACTICE["misconceptions"])
    assert "TFMT5ForConditionalGeneration" in text and "AutoModelForSeq2SeqLM" in text
    assert "F.relu" in text and "ReLU on the output logits" in text
    assert "eleven mistakes" in text


def test_faq_rows_agree_with_the_chapters():
    assert "(millions of parameters or more)" not in FAQ["gpu-needed"]["answer"]
    assert "hundreds of millions" in FAQ["gpu-needed"]["answer"]
    lr = FAQ["lr-choice"]["answer"]
    assert "1e-4" in lr and "4.4" in lr, "the FAQ must explain the 1e-4 that chapter 4.4 uses"
    law = FAQ["scaling-law"]["answer"]
    assert "predicts the loss of larger ones" not in law and "guesswork" in law
    assert "pin the revision" in FAQ["save-safely"]["answer"]
    assert FAQ["pytorch-compile"]["answer"].startswith("No.") and "torch.compile" in FAQ["pytorch-compile"]["answer"]
    assert FAQ["cloud-edge-compute"]["answer"].startswith("No, they move it")
    assert not re.search(r"never (pass|use) trust_remote_code", FAQ_TEXT, re.I)


def test_glossary_names_weight_tying_and_keeps_recursive_apart_from_recurrent():
    tying = [r for r in GLOSSARY if r["term"] == "weight tying"]
    assert len(tying) == 1 and "权重绑定" in tying[0]["zh"] and "权重共享" not in tying[0]["zh"]
    assert not any("递归" in r["zh"] for r in GLOSSARY if "recurrent" in r["term"].lower())
    note = source(PRACTICE["glossary"], "markdown")
    assert "递归神经网络" in note and "循环神经网络" in note and "recursive" in note
