"""Train sub-word tokenizers on the book's own corpus and show how they work.

Explained in chapter 4, "Tokenization" (and used by "Pipelines and safe saving" for a tiny GPT).
Two trainers wrap the Hugging Face ``tokenizers`` library:

- :func:`train_bpe_tokenizer`: byte-level BPE as in GPT-2 (Sennrich et al. 2016; Radford et al.
  2019). Text is first turned into UTF-8 bytes, each byte shown as one printable character
  (``Ġ`` is the space byte), so the 256 byte symbols cover every string: there is no unknown
  token and ``decode(encode(s)) == s`` for English, Chinese or emoji alike. Training repeatedly
  merges the most frequent adjacent pair of symbols into a new symbol until the vocabulary has
  ``vocab_size`` entries; the merges, in the order they were learned, *are* the tokenizer.
- :func:`train_wordpiece_tokenizer`: WordPiece as in BERT (lower-cased, ``##`` marks a piece
  that continues a word, ``[UNK]`` for characters never seen in training, ``[CLS] ... [SEP]``
  around every sequence). Cheap to train, and the same family as MiniLM's tokenizer.

Both return a ``transformers.PreTrainedTokenizerFast`` (padding, truncation, attention masks,
``save_pretrained``), so ``AutoTokenizer.from_pretrained(save_dir)`` loads them back offline.
:func:`bpe_merges` and :func:`tokenize_text` let a tokenizer "show its work".

Inputs: ``texts_or_files`` is a string, a ``pathlib.Path``, or a list of strings (texts) or of
paths (files). A plain ``str`` is always text, never a file name: wrap file names in ``Path``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from utils._validate import NonNegInt, PosInt, checked

__all__ = [
    "NUM_BYTES",
    "WORDPIECE_SPECIAL_TOKENS",
    "train_bpe_tokenizer",
    "train_wordpiece_tokenizer",
    "bpe_merges",
    "bpe_merge_steps",
    "readable_token",
    "TokenizedText",
    "tokenize_text",
]

NUM_BYTES = 256  # byte-level BPE starts from one symbol per possible byte value
WORDPIECE_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # BERT's five


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (bytes that print stay themselves;
    the others, such as space 0x20 -> 'Ġ' and newline 0x0A -> 'Ċ', move to code points 256+)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(NUM_BYTES):
        if b not in printable:
            printable.append(b)
            chars.append(NUM_BYTES + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


_CHAR_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}


def _as_sources(texts_or_files: object) -> tuple[list[str], list[str]]:
    """Split the input into (texts, file paths); exactly one of the two lists is non-empty."""
    if isinstance(texts_or_files, (str, os.PathLike)):
        items: list[object] = [texts_or_files]
    elif isinstance(texts_or_files, Iterable):
        items = list(texts_or_files)
    else:
        raise TypeError("texts_or_files must be a str, a pathlib.Path, or a list of str (texts) or of paths "
                        f"(files), got {type(texts_or_files).__name__}")
    if not items:
        raise ValueError("texts_or_files is empty: give at least one text or file")
    if all(isinstance(x, os.PathLike) for x in items):
        files = [os.fspath(x) for x in items]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise ValueError(f"texts_or_files names files that do not exist: {missing[:3]}")
        return [], files
    if all(isinstance(x, str) for x in items):
        for x in items:
            if len(x) < 1024 and "\n" not in x and os.path.isfile(x):
                raise ValueError(f"texts_or_files item {x!r} is the name of a file, but a str is read as text; "
                                 "pass pathlib.Path(...) to train on the file's contents")
        if not any(x.strip() for x in items):
            raise ValueError("texts_or_files holds only empty or blank texts")
        return items, []
    raise TypeError("texts_or_files must be all str (texts) or all pathlib.Path (files), got item types "
                    f"{sorted({type(x).__name__ for x in items})}")


def _check_vocab_size(vocab_size: object, minimum: int, why: str) -> int:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} ({why}), got {vocab_size}")
    return vocab_size


def _train(tok: Tokenizer, trainer, texts: list[str], files: list[str]) -> None:
    if files:
        tok.train(files, trainer)
    else:  # one paragraph per item, as a file would be read line by line
        tok.train_from_iterator((line for text in texts for line in text.split("\n")), trainer)


@checked
def train_bpe_tokenizer(texts_or_files: str | os.PathLike | Iterable, vocab_size: int,
                        save_dir: str | os.PathLike | None = None, *,
                        min_frequency: PosInt = 2, eos_token: str = "<|endoftext|>", pad_token: str = "<pad>",
                        model_max_length: PosInt = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2 style) and wrap it for ``transformers``.

    Args:
        texts_or_files: text(s) or ``Path``(s) of UTF-8 files to learn the merges from.
        vocab_size: final vocabulary size: 256 byte symbols + the special tokens + the merges.
            Fewer merges are learned if no pair occurs ``min_frequency`` times any more.
        save_dir: if given, ``save_pretrained(save_dir)`` writes ``tokenizer.json`` and
            ``tokenizer_config.json`` there, loadable with ``AutoTokenizer.from_pretrained``.
        min_frequency: a pair must occur at least this often to be merged.
        eos_token: marks the end of a document; also used as the beginning-of-sequence token.
        pad_token: fills short sequences in a padded batch (masked out by ``attention_mask``).
        model_max_length: the length that ``truncation=True`` cuts to by default.

    Returns:
        A ``PreTrainedTokenizerFast`` whose special tokens get ids 0 (``eos``) and 1 (``pad``).
        No normalisation and no prefix space, so ``decode(encode(s)) == s`` exactly.
    """
    special_tokens = list(dict.fromkeys([eos_token, pad_token]))
    _check_vocab_size(vocab_size, NUM_BYTES + len(special_tokens),
                      f"{NUM_BYTES} byte symbols + {len(special_tokens)} special tokens")
    texts, files = _as_sources(texts_or_files)

    tok = Tokenizer(models.BPE())
    # 1. Split into words at spaces and punctuation (GPT-2's regex), then into bytes shown as characters.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    # 2. Decoding joins the byte characters and turns them back into UTF-8 text.
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # all 256 bytes
    # 3. Learn merges: count adjacent pairs, merge the most frequent, repeat.
    _train(tok, trainer, texts, files)

    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eos_token, eos_token=eos_token,
                                      pad_token=pad_token, model_max_length=model_max_length,
                                      clean_up_tokenization_spaces=False)  # keep " ," as it was
    if save_dir is not None:
        wrapped.save_pretrained(save_dir)
    return wrapped


@checked
def train_wordpiece_tokenizer(texts_or_files: str | os.PathLike | Iterable, vocab_size: int,
                              save_dir: str | os.PathLike | None = None, *,
                              min_frequency: PosInt = 2, lowercase: bool = True,
                              model_max_length: PosInt = 512) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece tokenizer (counterpart of MiniLM's, trained on our corpus).

    Lower-cases (``lowercase=True``, as uncased BERT), splits at whitespace and punctuation and
    around every CJK character, then splits each word into the longest vocabulary pieces, marking
    continuations with ``##``. A character never seen in training becomes ``[UNK]``, so the round
    trip is *not* exact. Every encoding is wrapped as ``[CLS] ... [SEP]``.

    Not bit-for-bit reproducible (``tokenizers`` 0.23): the trainer numbers the ``##`` symbols in
    hash-map order and breaks ties between equally frequent pairs by those numbers, so a few
    late vocabulary entries can differ between runs. Byte-level BPE has no such symbols and is
    deterministic.

    Raises ``ValueError`` if ``vocab_size`` is too small to hold the special tokens and every
    character of the corpus (the trainer would silently exceed it).
    """
    special = list(WORDPIECE_SPECIAL_TOKENS)
    _check_vocab_size(vocab_size, len(special) + 1, f"{len(special)} special tokens + at least one piece")
    texts, files = _as_sources(texts_or_files)

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=special, show_progress=False)
    _train(tok, trainer, texts, files)
    if tok.get_vocab_size() > vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is too small: the corpus alone needs {tok.get_vocab_size()} "
                         "entries (special tokens + every character, with and without '##')")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                      cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                      model_max_length=model_max_length)
    if save_dir is not None:
        wrapped.save_pretrained(save_dir)
    return wrapped


def _backend_model(tokenizer) -> dict:
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer):
        raise TypeError(f"tokenizer must be a PreTrainedTokenizerFast or tokenizers.Tokenizer, "
                        f"got {type(tokenizer).__name__}")
    return json.loads(backend.to_str())["model"]


@checked
def readable_token(token: str) -> str:
    """Show a byte-level token as text: ``'Ġthe'`` -> ``'␣the'``, ``'Ċ'`` -> ``'↵'``.

    A token that holds only part of a multi-byte UTF-8 character shows the bytes it has, e.g. the
    first byte of 注 (E6 B3 A8) as ``'\\xe6'``. A token that is not byte-level (WordPiece's
    ``'##ing'``, ``'注'``) is returned unchanged.
    """
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    if not token or any(c not in _CHAR_TO_BYTE for c in token):
        return token
    text = bytes(_CHAR_TO_BYTE[c] for c in token).decode("utf-8", errors="backslashreplace")
    return text.replace(" ", "␣").replace("\n", "↵")


@checked
def bpe_merges(tokenizer: PreTrainedTokenizerFast | Tokenizer, n: NonNegInt | None = None, *,
               readable: bool = False) -> list[tuple[str, str]]:
    """The first ``n`` merges (all if ``None``) in the order training learned them.

    Each merge is a pair ``(left, right)`` whose concatenation became a new vocabulary entry;
    applying them in this order to the bytes of a word reproduces the tokenizer's split.
    ``readable=True`` passes both halves through :func:`readable_token`.
    """
    model = _backend_model(tokenizer)
    if model.get("type") != "BPE":
        raise ValueError(f"tokenizer must use a BPE model to have merges, got {model.get('type')!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None or a non-negative int, got {n!r}")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    merges = merges if n is None else merges[:n]
    if readable:
        return [(readable_token(a), readable_token(b)) for a, b in merges]
    return [(a, b) for a, b in merges]


@checked
def bpe_merge_steps(tokenizer: PreTrainedTokenizerFast, word: str) -> list[list[str]]:
    """Apply the merges to one word by hand, as BPE encoding does, and return every step.

    Starts from the word's bytes (one symbol each) and, while some adjacent pair is a learned
    merge, merges the pair that was learned *earliest* (everywhere in the word). Step 0 is the
    bytes; the last step equals the tokenizer's own split of ``word``. ``word`` must be one
    pre-token (e.g. ``"attention"`` or ``" attention"`` with its leading space), else ``ValueError``.
    Pieces are shown with :func:`readable_token`.
    """
    if not isinstance(word, str) or not word:
        raise ValueError(f"word must be a non-empty str, got {word!r}")
    pieces = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(word)
    if len(pieces) != 1:
        raise ValueError(f"word must be a single pre-token, but {word!r} splits into "
                         f"{[readable_token(p) for p, _ in pieces]}")
    rank = {pair: i for i, pair in enumerate(bpe_merges(tokenizer))}
    symbols = list(pieces[0][0])  # one byte character each
    steps = [symbols]
    while len(symbols) > 1:
        pairs = {(a, b) for a, b in zip(symbols, symbols[1:]) if (a, b) in rank}
        if not pairs:
            break
        best = min(pairs, key=rank.__getitem__)
        merged, i = [], 0
        while i < len(symbols):  # merge every occurrence, left to right
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
        steps.append(symbols)
    return [[readable_token(s) for s in step] for step in steps]


@checked
@dataclass(frozen=True)
class TokenizedText:
    """One string split by a tokenizer: vocabulary ``tokens``, their ``ids`` and readable ``pieces``."""

    tokens: list[str]
    ids: list[int]
    pieces: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def __str__(self) -> str:
        return "|".join(self.pieces)


@checked
def tokenize_text(tokenizer: PreTrainedTokenizerBase, text: str, *, add_special_tokens: bool = False) -> TokenizedText:
    """Split ``text`` into tokens and ids with a ``transformers`` tokenizer, and make them readable."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
    ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    return TokenizedText(tokens=tokens, ids=ids, pieces=[readable_token(t) for t in tokens])
