"""Semantic search with a pretrained sentence encoder, a lexical (TF-IDF) baseline, and the
retrieval metrics recall@k and mean reciprocal rank (MRR).

Explained in chapter 5.1 ("NLP: sentence classification and semantic search"). The document
set is the book's own glossary and FAQ (:func:`book_documents`); the labelled queries in
``utils/resources/search_queries.csv`` say which document answers each query.

Shapes: Q queries, N documents, C embedding width (384 for all-MiniLM-L6-v2), k results.
Both searchers return, for each query, the ``k`` document ids ranked best first and their
scores, so the metrics do not care which method produced a ranking.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import nn

from utils._validate import Float, PosInt, Tensor, Texts, checked

__all__ = [
    "SearchResult",
    "cosine_top_k",
    "SemanticSearcher",
    "TfidfSearcher",
    "minilm_embedder",
    "recall_at_k",
    "mean_reciprocal_rank",
    "book_documents",
    "load_search_queries",
]

EmbedFn = Callable[[list[str]], torch.Tensor]


@checked
@dataclass(frozen=True)
class SearchResult:
    """Rankings of a batch of queries: ``ids[q][r]`` is the document at rank ``r`` (0 = best)
    for query ``q`` and ``scores[q][r]`` its score (cosine similarity for both searchers)."""

    ids: list[list[str]]
    scores: np.ndarray  # (Q, k)


def _check_texts(name: str, texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise ValueError(f"{name} must not be empty")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] must be a non-empty string, got {texts[bad]!r}")
    return list(texts)


def _check_k(k: object, n_docs: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= n_docs:
        raise ValueError(f"k must be between 1 and the number of documents ({n_docs}), got {k}")
    return int(k)


@checked(mixed_dtypes=True)
def cosine_top_k(queries: Float[Tensor, "Q C"], docs: Float[Tensor, "N C"],
                 k: PosInt) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` documents by cosine similarity.

    Args:
        queries: ``(Q, C)`` query embeddings (any length; they are normalised here).
        docs: ``(N, C)`` document embeddings.
        k: number of results, ``1 <= k <= N``.

    Returns:
        ``(scores, indices)``, both ``(Q, k)``, best first. ``scores`` lie in [-1, 1].
    """
    if not isinstance(queries, torch.Tensor) or not isinstance(docs, torch.Tensor):
        raise TypeError(f"queries and docs must be tensors, got {type(queries).__name__} and {type(docs).__name__}")
    if queries.ndim != 2:
        raise ValueError(f"queries must be (Q, C), got shape {tuple(queries.shape)}")
    if docs.ndim != 2 or docs.shape[1] != queries.shape[1]:
        raise ValueError(f"docs must be (N, C) with C = {queries.shape[1]}, got shape {tuple(docs.shape)}")
    k = _check_k(k, docs.shape[0])
    q = torch.nn.functional.normalize(queries.to(docs.dtype), dim=1)  # (Q, C)
    d = torch.nn.functional.normalize(docs, dim=1)  # (N, C)
    sims = q @ d.T  # (Q, N): cosine similarity = dot product of unit vectors
    return sims.topk(k, dim=1)  # (Q, k), (Q, k)


@checked
class SemanticSearcher:
    """Embed ``documents`` once with ``embed``; rank them for a query by cosine similarity.

    Args:
        documents: the N texts to search.
        ids: one unique id per document (default ``"0"``, ``"1"``, ...).
        embed: a function ``list[str] -> (n, C)`` tensor, e.g. :func:`minilm_embedder`.
    """

    def __init__(self, documents: Texts, embed: EmbedFn, ids: Sequence[str] | None = None):
        self.documents = _check_texts("documents", documents)
        self.ids = _check_ids(ids, len(self.documents))
        if not callable(embed):
            raise TypeError(f"embed must be a function list[str] -> (n, C) tensor, got {type(embed).__name__}")
        self.embed = embed
        emb = embed(self.documents)
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2 or emb.shape[0] != len(self.documents):
            raise ValueError(f"embed must return a ({len(self.documents)}, C) tensor for the documents, "
                             f"got {getattr(emb, 'shape', type(emb).__name__)}")
        self.doc_embeddings = emb.detach().float()  # (N, C)

    @checked
    def search(self, queries: Texts, k: PosInt = 5) -> SearchResult:
        queries = _check_texts("queries", queries)
        scores, idx = cosine_top_k(self.embed(queries).float(), self.doc_embeddings, k)  # (Q, k)
        return SearchResult([[self.ids[j] for j in row] for row in idx.tolist()], scores.numpy())


@checked
class TfidfSearcher:
    """The lexical baseline: TF-IDF vectors of the words (scikit-learn's ``TfidfVectorizer``,
    English stop words removed, sublinear term frequency) ranked by cosine similarity.
    A query that shares no word with a document scores 0 against it."""

    def __init__(self, documents: Texts, ids: Sequence[str] | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.documents = _check_texts("documents", documents)
        self.ids = _check_ids(ids, len(self.documents))
        self.vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True)
        self.doc_matrix = self.vectorizer.fit_transform(self.documents)  # (N, vocab), rows L2-normalised

    @checked
    def search(self, queries: Texts, k: PosInt = 5) -> SearchResult:
        queries = _check_texts("queries", queries)
        k = _check_k(k, len(self.documents))
        sims = (self.vectorizer.transform(queries) @ self.doc_matrix.T).toarray()  # (Q, N)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]  # (Q, k): ties keep document order
        return SearchResult([[self.ids[j] for j in row] for row in order],
                            np.take_along_axis(sims, order, axis=1))


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    if ids is None:
        return [str(i) for i in range(n)]
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"ids must have one entry per document ({n}), got {len(ids)}")
    if len(set(ids)) != n:
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"ids must be unique, got {dup!r} more than once")
    return ids


@checked
def minilm_embedder(tokenizer: Callable, model: nn.Module, *, batch_size: PosInt = 64) -> EmbedFn:
    """A function ``list[str] -> (n, 384)`` that embeds with a loaded all-MiniLM-L6-v2
    (mean pooling and L2 normalisation, :func:`utils.pretrained.embed_sentences`)."""
    from utils.pretrained import embed_sentences

    return lambda texts: embed_sentences(list(texts), tokenizer, model, batch_size=batch_size)


def _check_rankings(ranked: object, relevant: object) -> None:
    if not isinstance(ranked, Sequence) or not all(isinstance(r, Sequence) and not isinstance(r, str) for r in ranked):
        raise TypeError("ranked must be a list of ranked id lists, one per query")
    if not isinstance(relevant, Sequence) or isinstance(relevant, str):
        raise TypeError(f"relevant must be a list with one entry per query, got {type(relevant).__name__}")
    if len(ranked) != len(relevant):
        raise ValueError(f"ranked and relevant must have one entry per query, got {len(ranked)} and {len(relevant)}")
    if not ranked:
        raise ValueError("ranked must not be empty")


def _as_set(rel: object) -> set[str]:
    rel = {rel} if isinstance(rel, str) else set(rel)
    if not rel:
        raise ValueError("each query needs at least one relevant id")
    return rel


@checked
def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[str | AbstractSet[str] | Sequence[str]],
                k: PosInt) -> float:
    """Mean over queries of |relevant ∩ top-k| / |relevant|.

    ``ranked[q]`` lists ids best first; ``relevant[q]`` is one id or a set of ids. With one
    relevant document per query this is the fraction of queries answered in the top ``k``.
    """
    _check_rankings(ranked, relevant)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return float(np.mean([len(_as_set(rel) & set(list(r)[:k])) / len(_as_set(rel))
                          for r, rel in zip(ranked, relevant)]))


@checked
def mean_reciprocal_rank(ranked: Sequence[Sequence[str]],
                         relevant: Sequence[str | AbstractSet[str] | Sequence[str]]) -> float:
    """MRR = mean over queries of 1 / (rank of the first relevant id), ranks counted from 1;
    a query with no relevant id in its ranking contributes 0."""
    _check_rankings(ranked, relevant)
    rr = []
    for r, rel in zip(ranked, relevant):
        rel = _as_set(rel)
        rank = next((i for i, doc in enumerate(r, start=1) if doc in rel), None)
        rr.append(0.0 if rank is None else 1.0 / rank)
    return float(np.mean(rr))


def book_documents() -> tuple[list[str], list[str]]:
    """The book's glossary and FAQ as a document set: ``(ids, texts)``.

    Glossary entries become ``"glossary:<term>"`` with text ``"<term>: <definition>"``; FAQ
    entries become ``"faq:<id>"`` with text ``"<question> <answer>"``.
    """
    from utils.faq import load_faq
    from utils.glossary import load_glossary

    ids, texts = [], []
    for g in load_glossary():
        ids.append(f"glossary:{g.term}")
        texts.append(f"{g.term}: {g.definition}")
    for f in load_faq():
        ids.append(f"faq:{f.id}")
        texts.append(f"{f.question} {f.answer}")
    return ids, texts


def load_search_queries() -> tuple[list[str], list[set[str]]]:
    """The labelled query set: ``(queries, relevant)`` where ``relevant[q]`` is the set of
    document ids (ids of :func:`book_documents`) that answer query ``q``; in the CSV several
    ids are separated by ``;``. Raises ``ValueError`` on a malformed row or an id that the
    document set does not contain."""
    path = resources.files("utils") / "resources" / "search_queries.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["query", "relevant"]:
            raise ValueError(f"search_queries.csv: header must be query,relevant, got {reader.fieldnames}")
        rows = [(line, (r["query"] or "").strip(), (r["relevant"] or "").strip()) for line, r in enumerate(reader, 2)]
    known = set(book_documents()[0])
    queries, relevant = [], []
    for line, q, rel in rows:
        ids = {i.strip() for i in rel.split(";") if i.strip()}
        if not q or not ids:
            raise ValueError(f"search_queries.csv, line {line}: query and relevant must be filled")
        unknown = sorted(ids - known)
        if unknown:
            raise ValueError(f"search_queries.csv, line {line}: relevant id(s) {unknown} not in book_documents()")
        queries.append(q)
        relevant.append(ids)
    return queries, relevant
