"""Tests of utils.search: top-k against a brute-force reference, both searchers, the metrics
on hand-computed cases, the shipped query set, and bad input named."""

import numpy as np
import pytest
import torch

from utils.search import (SemanticSearcher, TfidfSearcher, book_documents, cosine_top_k,
                          load_search_queries, mean_reciprocal_rank, recall_at_k)

DOCS = ["the cat sat on the mat", "dogs chase cats", "stock prices fell today", "a kitten on a rug"]


def letter_embed(texts):
    """A tiny deterministic embedder for tests: letter counts a..z, (n, 26)."""
    out = torch.zeros(len(texts), 26)
    for i, t in enumerate(texts):
        for ch in t.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def test_cosine_top_k_matches_brute_force_float64():
    g = torch.Generator().manual_seed(0)
    q, d = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(20, 8, generator=g, dtype=torch.float64)
    scores, idx = cosine_top_k(q, d, 3)
    assert scores.shape == idx.shape == (5, 3)
    sims = torch.nn.functional.cosine_similarity(q[:, None, :], d[None, :, :], dim=-1)  # (Q, N)
    ref_scores, ref_idx = sims.sort(dim=1, descending=True)
    torch.testing.assert_close(scores, ref_scores[:, :3])
    assert torch.equal(idx, ref_idx[:, :3])
    # scaling a query does not change cosine similarity
    torch.testing.assert_close(cosine_top_k(7 * q, d, 3)[0], scores)


@pytest.mark.parametrize("q, d, k, exc, msg", [
    (torch.zeros(3), torch.zeros(4, 3), 1, ValueError, r"queries must be a floating-point tensor of shape \(Q, C\), got float32 tensor of shape \(3,\)"),
    (torch.zeros(2, 3), torch.zeros(4, 5), 1, ValueError, r"docs must be .* \(N, C\) = \(4, 3\)"),
    (torch.zeros(2, 3), torch.zeros(4, 3), 5, ValueError, r"k must be between 1 and the number of documents \(4\), got 5"),
    (torch.zeros(2, 3), torch.zeros(4, 3), 0, ValueError, "got 0"),
    (torch.zeros(2, 3), torch.zeros(4, 3), 1.0, TypeError, "k must be a positive int, got 1.0"),
    (np.zeros((2, 3)), torch.zeros(4, 3), 1, TypeError, "queries must be a floating-point tensor of shape \\(Q, C\\), got numpy array"),
])
def test_cosine_top_k_bad_input(q, d, k, exc, msg):
    with pytest.raises(exc, match=msg):
        cosine_top_k(q, d, k)


def test_semantic_searcher_ranks_and_returns_ids():
    s = SemanticSearcher(DOCS, letter_embed, ids=["a", "b", "c", "d"])
    res = s.search(["the cat sat on the mat", "stock prices"], k=2)
    assert res.ids[0][0] == "a" and res.ids[1][0] == "c"
    assert res.scores.shape == (2, 2)
    assert res.scores[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(res.scores, axis=1) <= 1e-7)  # best first


def test_tfidf_searcher_is_lexical():
    s = TfidfSearcher(DOCS)
    res = s.search(["prices of stock", "kitten"], k=4)
    assert res.ids[0][0] == "2" and res.ids[1][0] == "3"
    assert res.scores[0, 0] > 0
    assert res.scores[0, 1] == 0.0  # no shared word with any other document
    miss = s.search(["feline"], k=1)  # a synonym: the lexical baseline cannot see it
    assert miss.scores[0, 0] == 0.0


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(documents="one string"), TypeError, "documents must be a non-empty list of str, got 'one string'"),
    (dict(documents=[]), ValueError, "documents must be a non-empty list of str, got list \\[it is empty\\]"),
    (dict(documents=["ok", ""]), TypeError, r"documents\[1\] must be a non-empty string"),
    (dict(documents=["a", "b"], ids=["x"]), ValueError, r"ids must have one entry per document \(2\), got 1"),
    (dict(documents=["a", "b"], ids=["x", "x"]), ValueError, "ids must be unique, got 'x'"),
])
def test_searchers_reject_bad_documents(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        TfidfSearcher(**kwargs)
    with pytest.raises(exc, match=msg):
        SemanticSearcher(embed=letter_embed, **kwargs)


def test_semantic_searcher_checks_embed():
    with pytest.raises(TypeError, match="embed must be a callable"):
        SemanticSearcher(DOCS, embed="minilm")
    with pytest.raises(ValueError, match=r"embed must return a \(4, C\) tensor"):
        SemanticSearcher(DOCS, embed=lambda texts: torch.zeros(3, 2))
    with pytest.raises(TypeError, match="queries must be a non-empty list of str"):
        SemanticSearcher(DOCS, letter_embed).search("cat")


def test_metrics_by_hand():
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevant = ["b", {"x", "z"}, "nope"]
    # recall@1: 0, 1/2, 0; recall@3: 1, 1, 0
    assert recall_at_k(ranked, relevant, 1) == pytest.approx((0 + 0.5 + 0) / 3)
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(2 / 3)
    # MRR: 1/2, 1/1, 0
    assert mean_reciprocal_rank(ranked, relevant) == pytest.approx((0.5 + 1 + 0) / 3)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: recall_at_k([["a"]], ["a", "b"], 1), ValueError, "one entry per query, got 1 and 2"),
    (lambda: recall_at_k([["a"]], ["a"], 0), ValueError, "k must be a positive int, got 0"),
    (lambda: recall_at_k(["abc"], ["a"], 1), TypeError, "ranked must be a sequence of sequence of str"),
    (lambda: mean_reciprocal_rank([], []), ValueError, "ranked must not be empty"),
    (lambda: mean_reciprocal_rank([["a"]], "a"), TypeError, "relevant must be a sequence of str"),
    (lambda: mean_reciprocal_rank([["a"]], [set()]), ValueError, "at least one relevant id"),
])
def test_metrics_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_book_documents_and_queries_are_consistent():
    ids, texts = book_documents()
    assert len(ids) == len(set(ids)) == len(texts)
    assert any(i.startswith("faq:") for i in ids) and any(i.startswith("glossary:") for i in ids)
    queries, relevant = load_search_queries()
    assert len(queries) == len(relevant) >= 30
    assert len(set(queries)) == len(queries)
    assert all(rel <= set(ids) for rel in relevant)


def test_minilm_beats_tfidf_on_the_book_queries():
    from utils.pretrained import load_pretrained_encoder
    from utils.search import minilm_embedder

    tokenizer, model = load_pretrained_encoder()
    ids, texts = book_documents()
    queries, relevant = load_search_queries()
    sem = SemanticSearcher(texts, minilm_embedder(tokenizer, model), ids).search(queries, k=5)
    lex = TfidfSearcher(texts, ids).search(queries, k=5)
    assert mean_reciprocal_rank(sem.ids, relevant) > mean_reciprocal_rank(lex.ids, relevant)
    assert recall_at_k(sem.ids, relevant, 5) >= 0.8
