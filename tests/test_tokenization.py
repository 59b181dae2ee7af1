from pathlib import Path

import pytest
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from utils.text_data import corpus_path, load_corpus
from utils.tokenization import (NUM_BYTES, TokenizedText, bpe_merge_steps, bpe_merges, readable_token, tokenize_text,
                                train_bpe_tokenizer, train_wordpiece_tokenizer)

ENGLISH = "Attention weights sum to one.  Tabs\tand\nnewlines, (brackets) and 3.14 stay!"
CHINESE = "注意力机制 (attention) 把每个词元和其他词元联系起来。模型很大 🙂"


@pytest.fixture(scope="module")
def bpe():
    return train_bpe_tokenizer(load_corpus(), vocab_size=400)


def test_byte_level_round_trip_is_exact_in_english_and_chinese(bpe):
    assert isinstance(bpe, PreTrainedTokenizerFast)
    for text in (ENGLISH, CHINESE, ENGLISH + "\n" + CHINESE, " leading and trailing spaces  "):
        ids = bpe(text)["input_ids"]
        assert bpe.decode(ids) == text
        assert bpe.unk_token_id is None  # byte-level: nothing is ever unknown


def test_merges_shorten_the_corpus_and_follow_the_vocabulary(bpe):
    assert len(bpe) == 400
    merges = bpe_merges(bpe)
    assert len(merges) == 400 - NUM_BYTES - 2  # every entry beyond the bytes and specials is one merge
    vocab = bpe.get_vocab()
    assert all(a + b in vocab for a, b in merges)
    assert bpe_merges(bpe, 3) == merges[:3]
    assert bpe_merges(bpe, 1, readable=True)[0] == tuple(readable_token(t) for t in merges[0])
    text = load_corpus()[:1000]
    assert len(bpe(text)["input_ids"]) < 0.6 * len(text.encode("utf-8"))  # 142 merges: about half the bytes


def test_special_tokens_are_single_ids_and_survive_reload(bpe, tmp_path):
    assert bpe.eos_token == bpe.bos_token == "<|endoftext|>" and bpe.pad_token == "<pad>"
    assert (bpe.eos_token_id, bpe.pad_token_id) == (0, 1)
    assert bpe("a<|endoftext|>b")["input_ids"][1] == 0
    bpe.save_pretrained(tmp_path)
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == bpe.get_vocab()
    assert (loaded.eos_token_id, loaded.pad_token_id) == (0, 1)
    for text in (ENGLISH, CHINESE):
        assert loaded(text)["input_ids"] == bpe(text)["input_ids"]
        assert loaded.decode(loaded(text)["input_ids"]) == text
    assert bpe_merges(loaded) == bpe_merges(bpe)


def test_save_dir_argument_and_padding_with_attention_mask(tmp_path):
    tok = train_bpe_tokenizer(["one two three", "two three four"] * 20, 270, tmp_path / "tok")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    batch = loaded(["one", "one two three four"], padding=True, return_tensors="pt")
    n = len(tok("one two three four")["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, n)
    assert batch["attention_mask"][0].tolist() == [1] + [0] * (n - 1)
    assert (batch["input_ids"][0, 1:] == tok.pad_token_id).all()


def test_training_is_deterministic_and_files_equal_texts():
    a = train_bpe_tokenizer(load_corpus(), 300)
    b = train_bpe_tokenizer(Path(corpus_path()), 300)
    assert a.get_vocab() == b.get_vocab() and bpe_merges(a) == bpe_merges(b)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="vocab_size must be at least 258"):
        train_bpe_tokenizer("some text", 100)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        train_bpe_tokenizer("some text", 300.0)
    with pytest.raises(ValueError, match="empty"):
        train_bpe_tokenizer([], 300)
    with pytest.raises(ValueError, match="pathlib.Path"):
        train_bpe_tokenizer(corpus_path(), 300)  # a str is text; a file name must be a Path
    with pytest.raises(ValueError, match="do not exist"):
        train_bpe_tokenizer(Path("/no/such/file.txt"), 300)
    with pytest.raises(TypeError, match="all str"):
        train_bpe_tokenizer(["text", Path(corpus_path())], 300)
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece_tokenizer(load_corpus(), 50)


def test_readable_token_shows_spaces_newlines_and_partial_characters():
    assert readable_token("Ġthe") == "␣the" and readable_token("Ċ") == "↵"
    assert readable_token("æ³") == "\\xe6\\xb3"  # two of the three UTF-8 bytes of 注 (E6 B3 A8)
    assert readable_token("æ³¨æĦıåĬĽ") == "注意力"
    assert readable_token("##ing") == "##ing" and readable_token("注") == "注"  # not byte-level
    assert len(pre_tokenizers.ByteLevel.alphabet()) == NUM_BYTES
    text = "".join(map(chr, range(32, 127))) + "\t é ü 注意力 🙂"  # our byte map is the library's
    pieces = pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)
    assert "".join(readable_token(p) for p, _ in pieces).replace("␣", " ") == text


def test_tokenize_text_matches_the_tokenizer(bpe):
    shown = tokenize_text(bpe, "the gradient")
    assert isinstance(shown, TokenizedText)
    assert shown.ids == bpe.encode("the gradient")
    assert shown.tokens == bpe.convert_ids_to_tokens(shown.ids)
    assert "".join(shown.pieces).replace("␣", " ") == "the gradient"
    assert str(shown) == "|".join(shown.pieces) and len(shown) == len(shown.ids)
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize_text(bpe, ["a list"])


def test_merge_steps_by_hand_end_at_the_tokenizers_split(bpe):
    for word in ("attention", " attention", " gradients", " 注意力", "Transformer", " xyzzy"):
        steps = bpe_merge_steps(bpe, word)
        assert steps[0] == [readable_token(c) for c in bpe.backend_tokenizer.pre_tokenizer.pre_tokenize_str(word)[0][0]]
        assert all(len(b) < len(a) for a, b in zip(steps, steps[1:]))  # every step merges something
        assert steps[-1] == tokenize_text(bpe, word).pieces
    with pytest.raises(ValueError, match="single pre-token"):
        bpe_merge_steps(bpe, "two words")


def test_wordpiece_variant_lowercases_marks_continuations_and_reloads(tmp_path):
    wp = train_wordpiece_tokenizer(load_corpus(), 1000, tmp_path)
    assert len(wp) == 1000
    shown = tokenize_text(wp, "Tokenization of 注意力 🙂", add_special_tokens=True)
    assert shown.tokens[0] == "[CLS]" and shown.tokens[-1] == "[SEP]"
    assert "[UNK]" in shown.tokens  # the emoji never occurs in the corpus
    assert any(t.startswith("##") for t in shown.tokens)
    assert {"注", "意", "力"} <= set(shown.tokens)  # CJK characters are split one by one
    assert wp.decode(shown.ids, skip_special_tokens=True).startswith("tokenization of")
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded("Gradient descent")["input_ids"] == wp("Gradient descent")["input_ids"]
    with pytest.raises(ValueError, match="BPE"):
        bpe_merges(wp)
