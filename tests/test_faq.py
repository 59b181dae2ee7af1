"""Tests of utils.faq: the shipped FAQ loads and every malformed row is rejected by name."""

import io

import pytest

from utils.faq import FAQ_COLUMNS, faq_markdown, load_faq, parse_faq

HEADER = ",".join(FAQ_COLUMNS) + "\n"


def _parse(body: str):
    return parse_faq(io.StringIO(HEADER + body), source="t.csv")


def test_shipped_faq_is_valid_and_covers_every_part():
    entries = load_faq()
    assert len(entries) >= 20
    assert len({e.id for e in entries}) == len(entries)
    assert {e.chapter for e in entries} >= {1, 2, 3, 4, 5, 6, 7}
    assert all(e.question.endswith("?") and len(e.answer) > 40 for e in entries)


def test_markdown_has_one_heading_per_question_grouped_by_chapter():
    entries = load_faq()
    md = faq_markdown(entries)
    assert md.count("\n### ") + md.startswith("### ") == len(entries)
    assert md.index("## Chapter 1") < md.index("## Chapter 7")


def test_parse_good_row():
    (e,) = _parse('a-b,What?,"Because, yes.",3\n')
    assert (e.id, e.question, e.answer, e.chapter) == ("a-b", "What?", "Because, yes.", 3)


@pytest.mark.parametrize("body, message", [
    ("a,What?,,3\n", "must not be empty"),
    ("Bad Id,What?,x,3\n", "lowercase slug"),
    ("a,What?,x,3\na,Other?,y,3\n", "used twice"),
    ("a,What?,x,3\nb,what?,y,3\n", "asked twice"),
    ("a,What,x,3\n", "end with '?'"),
    ("a,What?,x,9\n", "chapter must be an integer from 1 to 7"),
    ("a,What?,x,three\n", "chapter must be an integer"),
    ("a,What?,x,3,extra\n", "columns"),
    ("", "no FAQ entries"),
])
def test_parse_rejects_bad_rows(body, message):
    with pytest.raises(ValueError, match="t.csv") as info:
        _parse(body)
    assert message in str(info.value)


def test_parse_rejects_wrong_header():
    with pytest.raises(ValueError, match="header must be id,question,answer,chapter"):
        parse_faq(io.StringIO("question,answer\nWhat?,x\n"))
