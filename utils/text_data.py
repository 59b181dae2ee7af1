"""The book's own text corpus and character-level language-modelling data.

Used by the tokenisation and tiny-GPT notebooks (chapter 4) and the scaling-law notebook
(chapter 6). The corpus, ``resources/corpus/book_prose.txt``, is the prose of chapters 1-3 plus
the glossary definitions (with their Chinese names) and FAQ answers, one paragraph per line,
built by ``tools/make_corpus.py`` and frozen. It ships with the package, so it works offline
and on Colab, and it is ours to use.

Shapes: N corpus length in tokens, B batch, T block (context) length.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import torch

from utils._validate import Device, FloatIn, Integer, PosInt, Tensor, check, checked

__all__ = ["load_corpus", "corpus_path", "CharVocab", "LMSplit", "char_lm_split", "get_batch"]


def corpus_path() -> str:
    """Filesystem path of the corpus file (for ``tokenizers`` trainers that want files)."""
    return str(resources.files("utils") / "resources" / "corpus" / "book_prose.txt")


def load_corpus() -> str:
    """The whole corpus as one string (about 96 kB, 376 paragraphs separated by newlines)."""
    return (resources.files("utils") / "resources" / "corpus" / "book_prose.txt").read_text(encoding="utf-8")


@checked
class CharVocab:
    """A character-level tokenizer: one id per distinct character of ``text``, sorted.

    >>> v = CharVocab("hello")
    >>> v.decode(v.encode("hell"))
    'hell'
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string to build a vocabulary from")
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    @checked
    def encode(self, text: str) -> list[int]:
        """String -> list of ids; raises ``ValueError`` naming the first unknown character."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary of {len(self)} characters") from None

    @checked
    def decode(self, ids: list[int] | Integer[Tensor, "..."]) -> str:
        """Ids (list or 1-D tensor) -> string."""
        bad = [i for i in (ids.flatten().tolist() if isinstance(ids, torch.Tensor) else ids) if not 0 <= i < len(self)]
        check(not bad, "ids", f"ids in [0, {len(self)}) (the vocabulary size)", f"{bad[:3]}")
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1:
                raise ValueError(f"ids must be 1-D, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        return "".join(self.chars[i] for i in ids)


@checked
@dataclass(frozen=True)
class LMSplit:
    """Token ids for language modelling: ``train`` and ``val`` are 1-D long tensors."""

    train: Integer[Tensor, "n"]
    val: Integer[Tensor, "m"]
    vocab: CharVocab


@checked
def char_lm_split(text: str | None = None, *,
                  val_fraction: FloatIn(0.0, 1.0, lo_open=True, hi_open=True) = 0.1) -> LMSplit:
    """Encode ``text`` (default: the corpus) character by character and split it: the first
    ``1 - val_fraction`` for training, the rest for validation (a contiguous split, so that
    validation text is unseen)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = load_corpus() if text is None else text
    vocab = CharVocab(text)
    ids = torch.tensor(vocab.encode(text), dtype=torch.long)  # (N,)
    n_train = int(len(ids) * (1 - val_fraction))
    check(0 < n_train < len(ids), "text", f"long enough to leave characters on both sides of the split "
          f"(val_fraction={val_fraction})", f"{len(ids)} characters")
    return LMSplit(ids[:n_train], ids[n_train:], vocab)


@checked
def get_batch(data: Integer[Tensor, "n"], block_size: PosInt, batch_size: PosInt, *,
              generator: torch.Generator | None = None, device: Device = "cpu"
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``data`` (1-D ids): inputs ``x (B, T)`` and next-token targets
    ``y (B, T)`` with ``y[:, t] = x[:, t + 1]`` shifted by one position."""
    if data.ndim != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size and batch_size must be >= 1, got {block_size} and {batch_size}")
    if len(data) <= block_size:
        raise ValueError(f"data has {len(data)} tokens, need more than block_size={block_size}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + block_size] for s in starts.tolist()])  # (B, T)
    y = torch.stack([data[s + 1:s + 1 + block_size] for s in starts.tolist()])  # (B, T)
    return x.to(device), y.to(device)
