from utils.glossary import load_glossary, glossary_markdown


def test_glossary_entries_are_complete_and_unique():
    entries = load_glossary()
    assert len(entries) >= 30
    terms = [e.term.lower() for e in entries]
    assert len(terms) == len(set(terms))
    assert all(e.zh and e.definition and e.chapter for e in entries)
    assert any(e.term.startswith("large model") and e.zh == "大模型" for e in entries)


def test_glossary_markdown_has_one_row_per_entry():
    entries = load_glossary()
    md = glossary_markdown(entries)
    assert md.count("\n") == len(entries) + 1 and "| 中文 |" in md
