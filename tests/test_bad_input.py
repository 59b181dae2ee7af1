"""Bad input gets a clear error everywhere in utils (issue 21): a property test of the whole public API.

Every public callable of ``utils`` (each name in a module's ``__all__``, except ``utils.checks`` and
``utils.widgets``, and the public methods of its classes) declares what it accepts in its
signature (:mod:`utils._validate`). Here bad values are thrown at each parameter, one at a time,
with every other argument valid. A call passes only if it raises ``ValueError`` or ``TypeError``
with the parameter's name in the message; any other exception, a message that does not name the
parameter, or a call that returns (the bad value was accepted silently) fails. The bad values:

1. from the declared kind of the parameter: a tensor that is a list or a NumPy array, of the wrong
   rank, dtype or size, empty, or disagreeing with another argument on a shared dimension; a
   number outside its range; an unknown option; a wrong-length tuple; an empty list of texts;
2. from rules that hold whatever the declaration says: ``object()``; ``None`` where ``None`` is
   not declared; a string where no string is; ``"no"`` and ``1`` for a bool flag; a bool for an
   int; NaN and infinity for numbers; and by the parameter's name: sizes and counts (``steps``,
   ``epochs``, ``batch_size``, ``block_size``, ``num_*``, ...) reject 0 and -1, counts that may be 0
   (``max_new_tokens``, ``warmup``, ...) reject -1, probabilities (``dropout``, ``top_p``, ``alpha``,
   ...) reject -0.5 and 1.5, rates and temperatures (``lr``, ``temperature``, ...) reject 0 and -1;
3. hypothesis: numbers drawn from outside the declared range, arbitrary text for options and
   flags, random shapes for tensors (bounded examples, derandomized, no deadline).

Out-of-range token ids and class labels (values, not types) have their own test at the end.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import pkgutil
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import utils
from utils import _validate as V

@pytest.fixture(autouse=True, scope="module")
def _in_a_temporary_folder(tmp_path_factory):
    """A bad value accepted by mistake (or a future regression) must not write into the repository."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("bad_input"))
    yield
    os.chdir(here)


SKIP_PACKAGES = {"checks", "widgets"}  # owned elsewhere: lab checkers and the widget views
MODULES = sorted(m.name for m in pkgutil.iter_modules(utils.__path__)
                 if not m.name.startswith("_") and m.name not in SKIP_PACKAGES)


# ------------------------------------------------------------------------------- the public API

def _public_callables() -> list[tuple[str, object, str | None]]:
    """``(id, owner, method name or None)`` for every public callable and public method."""
    out = []
    for m in MODULES:
        mod = importlib.import_module(f"utils.{m}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not callable(obj) or (isinstance(obj, type) and issubclass(obj, BaseException)):
                continue
            out.append((f"{m}.{name}", obj, None))
            if isinstance(obj, type):
                for attr, fn in vars(obj).items():
                    if inspect.isfunction(fn) and (not attr.startswith("_") or attr == "__call__"):
                        out.append((f"{m}.{name}.{attr}", obj, attr))
    return out


PUBLIC = _public_callables()


def _function(owner, method):
    if method is not None:
        return getattr(owner, method)
    return owner.__init__ if isinstance(owner, type) else owner


def _params(owner, method) -> list[inspect.Parameter]:
    fn = _function(owner, method)
    if isinstance(owner, type) and method is None and hasattr(owner, "__dataclass_fields__"):
        sig = inspect.signature(owner)
    else:
        sig = inspect.signature(fn)
    return [p for n, p in sig.parameters.items() if n != "self" and p.kind != p.VAR_KEYWORD]


def _checker(owner, method):
    fn = _function(owner, method)
    make = getattr(fn, "__checker__", None)
    return make() if make else None


WITH_PARAMS = [(i, o, m) for i, o, m in PUBLIC if _params(o, m)]


def test_every_public_callable_declares_its_parameters():
    undeclared = []
    for ident, owner, method in WITH_PARAMS:
        checker = _checker(owner, method)
        if checker is None:
            undeclared.append(f"{ident}: not @checked")
            continue
        missing = [p.name for p in _params(owner, method) if p.name not in checker.specs]
        if missing:
            undeclared.append(f"{ident}: no annotation for {missing}")
    assert not undeclared, "declare these in the signature (see CONTRIBUTING.md, utils):\n" + "\n".join(undeclared)
    assert len(WITH_PARAMS) >= 342  # the count in the closing note of issue 21


# ------------------------------------------------------------------------------- good values

class _FakeEncoder(nn.Module):
    """Stands in for a Hugging Face encoder: ``config.hidden_size`` and ``last_hidden_state``."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(hidden_size=hidden)
        self.emb = nn.Embedding(100, hidden)

    def forward(self, input_ids, attention_mask=None, **_):
        return types.SimpleNamespace(last_hidden_state=self.emb(input_ids))


_CACHE: dict[str, object] = {}


def _tokenizer():
    if "tok" not in _CACHE:
        from utils.tokenization import train_bpe_tokenizer

        _CACHE["tok"] = train_bpe_tokenizer(["a small text about attention", "another text"] * 4, 300)
    return _CACHE["tok"]


def _axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _factories() -> dict[type, typing.Callable[[], object]]:
    import matplotlib.pyplot as plt
    from tokenizers import Tokenizer
    from torch.utils.data import DataLoader, TensorDataset
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from utils import (cnn_blocks, data, depth, encoder_decoder, faq, finetune, glossary, gpt, landmarks,
                       llama, lora, normalization, optim, rnn, rnn_lm, rnn_models, scaling, seq2seq, text_data,
                       training, transformer)
    from utils import distributed as dist
    from utils.diagrams import attention as diagrams_attention
    from utils.diagrams import conv as diagrams_conv

    tiny_gpt = dict(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)
    tiny_seq2seq = dict(vocab_size=10, max_len=8, d_model=8, num_heads=2, num_layers=1, d_ff=16)
    tiny_llama = dict(vocab_size=16, dim=8, n_layer=1, n_head=2, n_kv_head=1, hidden_dim=16, max_seq_len=16)
    return {
        nn.Module: lambda: nn.Linear(2, 2),
        nn.Linear: lambda: nn.Linear(2, 2),
        nn.BatchNorm2d: lambda: nn.BatchNorm2d(2),
        nn.MultiheadAttention: lambda: nn.MultiheadAttention(8, 2, batch_first=True),
        nn.RNNBase: lambda: nn.GRU(2, 3, batch_first=True),
        nn.GRU: lambda: nn.GRU(2, 3, batch_first=True),
        gpt.GPTConfig: lambda: gpt.GPTConfig(**tiny_gpt),
        gpt.GPT: lambda: gpt.GPT(gpt.GPTConfig(**tiny_gpt)),
        transformer.TinyTransformerConfig: lambda: transformer.TinyTransformerConfig(
            max_len=8, d_model=8, num_heads=2, num_layers=1, d_ff=16),
        rnn.CellWeights: lambda: rnn.weights_from_torch(nn.GRU(2, 3)),
        rnn_models.SequenceRegressor: lambda: rnn_models.SequenceRegressor("gru", 2, 3),
        finetune.EncoderClassifier: lambda: finetune.EncoderClassifier(_FakeEncoder(), 2),
        scaling.CharMLPConfig: lambda: scaling.CharMLPConfig(vocab_size=5, context_size=4),
        scaling.CharMLP: lambda: scaling.CharMLP(scaling.CharMLPConfig(vocab_size=5, context_size=4)),
        dist.DataParallelConfig: lambda: dist.DataParallelConfig(world_size=1, steps=1, global_batch_size=4),
        optim.Surface: lambda: optim.SURFACES["convex bowl"],
        training.History: lambda: training.History(),
        text_data.CharVocab: lambda: text_data.CharVocab("abcdef"),
        faq.FaqEntry: lambda: faq.FaqEntry("a-b", "why?", "because", 1),
        glossary.GlossaryEntry: lambda: glossary.GlossaryEntry("term", "术语", "a definition", "1"),
        landmarks.LandmarkModel: lambda: landmarks.LandmarkModel("m", 2020, 10, "dense", "paper"),
        PreTrainedTokenizerFast: _tokenizer,
        PreTrainedTokenizerBase: _tokenizer,
        Tokenizer: lambda: _tokenizer().backend_tokenizer,
        np.random.Generator: lambda: np.random.default_rng(0),
        torch.Generator: lambda: torch.Generator().manual_seed(0),
        torch.device: lambda: torch.device("cpu"),
        torch.Tensor: lambda: torch.zeros(2),
        np.ndarray: lambda: np.zeros((3, 3)),
        plt.Axes: _axes,
        DataLoader: lambda: DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)),
                                       batch_size=2),
        Path: lambda: Path("."),
        data.DigitsSplit: lambda: data.DigitsSplit(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
                                                   torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)),
        normalization.LayerNorm: lambda: normalization.LayerNorm(4),
        normalization.RMSNorm: lambda: normalization.RMSNorm(4),
        cnn_blocks.BasicBlock: lambda: cnn_blocks.BasicBlock(2, 3, stride=2),
        cnn_blocks.Subsample2d: lambda: cnn_blocks.Subsample2d(2),
        cnn_blocks.SmallCNN: lambda: cnn_blocks.SmallCNN("max", (2, 2)),
        cnn_blocks.TinyResNet: lambda: cnn_blocks.TinyResNet((2, 3)),
        depth.ResidualBlock: lambda: depth.ResidualBlock(4),
        encoder_decoder.DecoderBlock: lambda: encoder_decoder.DecoderBlock(8, 2, 16),
        encoder_decoder.Seq2SeqTransformerConfig: lambda: encoder_decoder.Seq2SeqTransformerConfig(**tiny_seq2seq),
        encoder_decoder.TransformerSeq2Seq: lambda: encoder_decoder.TransformerSeq2Seq(
            encoder_decoder.Seq2SeqTransformerConfig(**tiny_seq2seq)),
        seq2seq.AdditiveAttention: lambda: seq2seq.AdditiveAttention(3, 4, 5),
        seq2seq.Seq2SeqGRU: lambda: seq2seq.Seq2SeqGRU(10, 4, 6, attention=True),
        rnn_lm.CharRNNLM: lambda: rnn_lm.CharRNNLM(6, 4, 5),
        diagrams_attention.QKVExample: lambda: diagrams_attention.qkv_example(),
        diagrams_conv.Im2colExample: lambda: diagrams_conv.im2col_example(),
        diagrams_conv.Layer1d: lambda: diagrams_conv.Layer1d("conv", 3, 1, 1),
        llama.LlamaConfig: lambda: llama.LlamaConfig(**tiny_llama),
        llama.Llama: lambda: llama.Llama(llama.LlamaConfig(**tiny_llama)),
        llama.Attention: lambda: llama.Attention(llama.LlamaConfig(**tiny_llama)),
        llama.SwiGLU: lambda: llama.SwiGLU(llama.LlamaConfig(**tiny_llama)),
        llama.Block: lambda: llama.Block(llama.LlamaConfig(**tiny_llama)),
        llama.KVCache: lambda: llama.KVCache(1),
        llama.RMSNorm: lambda: llama.RMSNorm(8),
        lora.LoRALinear: lambda: lora.LoRALinear(nn.Linear(8, 4), r=2),
    }


def _instances() -> dict[type, typing.Callable[[], object]]:
    from utils import (attention, audio, conv, efficiency, finetune, positional, scaling, search, text_data,
                       training, transformer)

    return {
        attention.MultiHeadAttention: lambda: attention.MultiHeadAttention(8, 2),
        transformer.TransformerBlock: lambda: transformer.TransformerBlock(8, 2, 16),
        transformer.TinyTransformer: lambda: transformer.TinyTransformer(transformer.TinyTransformerConfig(
            max_len=8, d_model=8, num_heads=2, num_layers=1, d_ff=16)),
        finetune.MeanPoolHead: lambda: finetune.MeanPoolHead(8, 3),
        conv.DigitsCNN: lambda: conv.DigitsCNN(),
        positional.SinusoidalPositionalEncoding: lambda: positional.SinusoidalPositionalEncoding(8, 16),
        positional.LearnedPositionalEmbedding: lambda: positional.LearnedPositionalEmbedding(8, 16),
        audio.SpectrogramCNN: lambda: audio.SpectrogramCNN(),
        efficiency.DistillationLoss: lambda: efficiency.DistillationLoss(),
        scaling.PowerLawFit: lambda: scaling.PowerLawFit(1.0, 0.5, 0.0, 1.0),
        search.SemanticSearcher: lambda: search.SemanticSearcher(["a b", "c d"], lambda t: torch.randn(len(t), 4)),
        search.TfidfSearcher: lambda: search.TfidfSearcher(["a cat", "a dog"]),
        text_data.CharVocab: lambda: text_data.CharVocab("abcdef"),
        training.History: lambda: training.History(),
    }


FACTORIES = _factories()
INSTANCES = _instances()


def _factory_for(cls: type):
    if cls in FACTORIES:
        return FACTORIES[cls]()
    if cls in INSTANCES:
        return INSTANCES[cls]()
    for base, make in FACTORIES.items():
        if isinstance(base, type) and issubclass(cls, base) and base is not nn.Module:
            return make()
    raise LookupError(f"no factory for {cls!r}: add one to FACTORIES in tests/test_bad_input.py")


class _Sizes:
    """One size per dimension name (2, 3, 4, ... in order of first use), shared by one call."""

    def __init__(self, preset: dict[str, int] | None = None) -> None:
        self.sizes = dict(preset or {})

    def __call__(self, name: str) -> int:
        if name not in self.sizes:
            self.sizes[name] = 2 + len(self.sizes)
        return self.sizes[name]


_DTYPE = {"float": torch.float32, "long": torch.long, "integer": torch.long, "real": torch.float32,
          "bool": torch.bool, "any": torch.float32}


def _tensor(spec: V.TensorSpec, sizes: _Sizes, override: dict[int, int] | None = None) -> torch.Tensor:
    shape = [int(d) if d[0].isdigit() else (2 if d == "_" else sizes(d)) for d in spec.fixed]
    for i, s in (override or {}).items():
        shape[i] = s
    if spec.trailing:
        shape.append(3)  # "N ...": one more dimension, as a real input would have
    dtype = _DTYPE[spec.kind]
    if dtype.is_floating_point:
        return torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return torch.ones(shape, dtype=dtype) if dtype == torch.bool else torch.zeros(shape, dtype=dtype)


def _good(spec, sizes: _Sizes):
    """A value that the declaration accepts (the body may still want more: it is never reached)."""
    spec = _unwrap(spec)
    if isinstance(spec, V.TensorSpec):
        return _tensor(spec, sizes)
    if isinstance(spec, V.Range):
        lo, hi = spec.lo, spec.hi
        if spec.integer:
            value = 1 if lo is None else int(lo) + (1 if spec.lo_open else 0)
            value = max(value, 1) if hi is None or hi >= 1 else value
            return value
        if lo is not None and hi is not None:
            return (lo + hi) / 2
        return 0.5 if lo is None else lo + 0.5
    if isinstance(spec, V.Choice):
        return spec.options[0]
    if isinstance(spec, V._DeviceSpec):
        return "cpu"
    if isinstance(spec, V._Duck):
        return types.SimpleNamespace(**{m: (lambda *a, **k: None) for m in spec.methods})
    if isinstance(spec, V._Items):
        return [0, 1] if spec.tensor is not None else ["a small text", "another text"]
    if isinstance(spec, V._Fixed):
        return tuple(_good(s, sizes) for s in spec.items)
    if isinstance(spec, V._Optional):
        return None
    if isinstance(spec, V._Plain):
        if spec.union is not None:
            for s in spec.union:
                try:
                    return _good(s, sizes)
                except LookupError:
                    continue
            raise LookupError(f"no good value for {spec.text}")
        return _good_hint(spec.hint, sizes)
    if isinstance(spec, V._StrItem):
        return "a"
    raise LookupError(f"no good value for {spec!r}")


def _good_hint(hint, sizes: _Sizes):
    if hint is bool:
        return False
    if hint is int:
        return 1
    if hint is float:
        return 0.5
    if hint is str:
        return "a"
    if hint is type(None):
        return None
    if hint in (typing.Any, object):
        return 0
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _good(V.spec_of(hint), sizes)
    if origin is not None:
        import collections.abc as cabc

        if origin is cabc.Callable:
            return lambda *a, **k: None
        if issubclass(origin, Mapping):
            if args and args[1] is torch.Tensor:  # a tokenizer's output
                return {"input_ids": torch.zeros(1, 2, dtype=torch.long),
                        "attention_mask": torch.ones(1, 2, dtype=torch.long)}
            return {}
        if origin is tuple:
            return tuple(_good(V.spec_of(a), sizes) for a in args if a is not Ellipsis)
        if issubclass(origin, (cabc.Sequence, cabc.Set, cabc.Iterable)):
            item = _good(V.spec_of(args[0]), sizes) if args else 1
            return [item]
        raise LookupError(f"no good value for {hint!r}")
    import collections.abc as cabc

    if hint in (cabc.Iterable, cabc.Sequence):
        return []
    if hint is cabc.Callable:
        return lambda *a, **k: None
    if hint in (dict, list, tuple):
        return hint()
    if isinstance(hint, type):
        return _factory_for(hint)
    raise LookupError(f"no good value for {hint!r}")


def _prepare(owner, method):
    """``(callable, checker, params, good kwargs, sizes)`` for one public callable."""
    checker = _checker(owner, method)
    params = _params(owner, method)
    if method is not None:
        instance = INSTANCES[owner]() if owner in INSTANCES else _factory_for(owner)
        target = getattr(instance, method)
        preset = {}
        for dim, attr in checker.self_dims.items():
            value = instance
            for part in attr.split("."):
                value = getattr(value, part)
            preset[dim] = value
    else:
        target, preset = owner, {}
    sizes = _Sizes(preset)
    good = {}
    for p in params:
        spec = checker.specs[p.name]
        good[p.name] = [_good(spec, sizes)] if p.kind == p.VAR_POSITIONAL else _good(spec, sizes)
    return target, checker, params, good, sizes


def _call(target, params, kwargs):
    args, kw = [], {}
    for p in params:
        if p.name not in kwargs:
            continue
        if p.kind == p.VAR_POSITIONAL:
            args.extend(kwargs[p.name])
        elif p.kind == p.POSITIONAL_ONLY:
            args.append(kwargs[p.name])
        else:
            kw[p.name] = kwargs[p.name]
    return target(*args, **kw)


# ------------------------------------------------------------------------------- bad values

SIZE_NAME = re.compile(r"^(steps|epochs|batch_size|block_size|seq_len|max_len|d_model|d_ff|d_k|vocab_size|hidden_size|"
                       r"input_size|context_size|embed_dim|num_\w+|n_(layer|head|embd|fft|freq|gpus)|\w+_size|repeats|"
                       r"window|stride|kernel_size|hop_length|top_k|ncols|batches|eval_every|world_size|"
                       r"num_shards|size|total|head_dim|k|reps|channels)$")
COUNT_NAME = re.compile(r"^(max_new_tokens|warmup|step|bin_index|rank|position|padding|top|seed|"
                        r"test_size|min_frequency)$")
PROB_NAME = re.compile(r"^(dropout|dropout_p|top_p|alpha|amount|threshold|val_fraction|mfu|momentum|z|r)$")
RATE_NAME = re.compile(r"^(lr|lr0|head_lr|temperature|eps|C|base|noise_std|clip|grad_clip|peak_flops|"
                       r"price_per_gpu_hour|flops|n_params|n_tokens|compute_flops|tokens_per_param|num_params|"
                       r"num_bytes|size|scale)$")
NEGATIVE_OK = {"fill", "bias", "w_x", "u_h", "h0", "lr_min", "weight_decay", "vmin", "vmax", "scale"}


class _Opaque:
    """Stands for any object that is none of the declared kinds."""

    def __repr__(self) -> str:
        return "<opaque object>"


def _unwrap(spec):
    """The check behind ``Annotated[hint, "words"]``."""
    return _unwrap(spec.spec) if isinstance(spec, V._Described) else spec


def _allows(spec, kind: type) -> bool:
    """Whether the declaration accepts some value of this plain type (``str`` or ``NoneType``)."""
    spec = _unwrap(spec)
    if isinstance(spec, V._Optional):
        return kind is type(None) or _allows(spec.spec, kind)
    if isinstance(spec, V._Plain):
        return _hint_allows(spec.hint, kind)
    if kind is str:
        return (isinstance(spec, V.Choice) and isinstance(spec.options[0], str)) or \
            isinstance(spec, (V._DeviceSpec, V._StrItem))
    return False


def _hint_allows(hint, kind: type) -> bool:
    if hint is kind or hint in (typing.Any, object):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_hint_allows(a, kind) for a in typing.get_args(hint))
    if origin is typing.Annotated:
        return _allows(V.spec_of(hint), kind)
    return False


def _numeric(good) -> bool:
    return isinstance(good, (int, float)) and not isinstance(good, bool)


def _by_name(name: str, good) -> list[tuple[str, object]]:
    """Bad values that follow from the parameter's name alone, whatever its declaration."""
    if not _numeric(good) or name in NEGATIVE_OK:
        return []
    out = []
    if SIZE_NAME.match(name) and isinstance(good, int):
        out += [("zero size", 0), ("negative size", -1)]
    elif COUNT_NAME.match(name) and isinstance(good, int):
        out += [("negative count", -1)]
    if PROB_NAME.match(name):
        out += [("probability < 0", -0.5), ("probability > 1", 1.5)]
    if RATE_NAME.match(name):
        out += [("negative", -1.0)]
        if name in ("lr", "lr0", "head_lr", "temperature", "eps", "base", "flops", "peak_flops", "n_params",
                    "n_tokens", "compute_flops", "tokens_per_param", "num_params"):
            out += [("zero", 0.0)]
    return out


def _universal(spec, name: str, good) -> list[tuple[str, object]]:
    """Bad values for any parameter, unless its declaration says otherwise."""
    out = [("an opaque object", _Opaque())]
    if not _allows(spec, type(None)):
        out.append(("None", None))
    if not _allows(spec, str):
        out.append(("a string", "no"))
    if isinstance(good, bool):
        out += [("1 for a bool", 1), ("'no' for a bool", "no")]
    elif isinstance(good, int):
        out += [("a bool for an int", True), ("a float for an int", 1.5), ("a numeric string", "3")]
    elif isinstance(good, float):
        out += [("NaN", math.nan), ("infinity", math.inf), ("a bool for a number", True)]
    return out


def _derived(spec, name: str, good, sizes: _Sizes, shared: set[str]) -> list[tuple[str, object]]:
    """Bad values from the declared kind."""
    spec = _unwrap(spec)
    out: list[tuple[str, object]] = []
    if isinstance(spec, V._Optional):
        return [(label, v) for label, v in _derived(spec.spec, name, good, sizes, shared) if v is not None]
    if isinstance(spec, V.TensorSpec) and isinstance(good, torch.Tensor):
        out.append(("a NumPy array", good.numpy()))
        if good.ndim:
            out.append(("a list", good.tolist()))  # (a 0-d tensor's list is a plain number)
        if not spec.ellipsis and not spec.trailing:
            out.append(("one more dimension", good.unsqueeze(0)))
            if good.ndim:
                out.append(("one dimension less", good[0]))
        swaps = {"float": [torch.long, torch.bool], "long": [torch.float32, torch.int32],
                 "integer": [torch.float32, torch.bool], "real": [torch.bool, torch.complex64],
                 "bool": [torch.float32, torch.long], "any": []}[spec.kind]
        out += [(f"dtype {d}", good.to(d)) for d in swaps]
        offset = good.ndim - len(spec.fixed) if not spec.trailing else 0
        for i, d in enumerate(spec.fixed):
            if d == "_" or d.startswith("*"):
                continue
            if not d[0].isdigit():
                shape = list(good.shape)
                shape[offset + i] = 0
                out.append((f"empty along {d}", good.new_zeros(shape)))
            if d[0].isdigit() or d in shared:
                shape = list(good.shape)
                shape[offset + i] += 1
                wrong = torch.randn(shape) if good.dtype.is_floating_point else good.new_zeros(shape)
                out.append((f"{d} disagrees", wrong))
    elif isinstance(spec, V.Range):
        lo, hi = spec.lo, spec.hi
        if lo is not None:
            out.append(("below the range", lo if spec.lo_open else (lo - 1 if spec.integer else lo - 0.5)))
        if hi is not None:
            out.append(("above the range", hi if spec.hi_open else (hi + 1 if spec.integer else hi + 0.5)))
        if spec.integer:
            out.append(("a float", 1.5))
    elif isinstance(spec, V.Choice):
        if isinstance(spec.options[0], str):
            out.append(("an unknown option", "no-such-option"))
        out.append(("an unknown option", 3.25))
    elif isinstance(spec, V._DeviceSpec):
        out += [("an unknown device", "gpu0"), ("a number", 3)]
    elif isinstance(spec, V._Items):
        out += [("empty", []), ("a bare string", "abc"), ("a bad item", [_Opaque()])]
        if spec.tensor is not None:
            out.append(("a negative label", [-1]))
    elif isinstance(spec, V._Fixed):
        out += [("too short", list(good)[:-1]), ("a number", 3)]
        for i, s in enumerate(spec.items):
            for label, bad in _derived(s, f"{name}[{i}]", good[i], sizes, shared):
                out.append((f"item {i}: {label}", tuple(bad if j == i else g for j, g in enumerate(good))))
    elif isinstance(spec, V._Duck):
        out.append(("an object without the methods", 3))
    elif isinstance(spec, V._Plain) and _tensor_specs(spec) and isinstance(good, torch.Tensor):
        out += [("three more dimensions", good[None, None, None]), ("a complex dtype", good.to(torch.complex64))]
        if good.ndim:
            out.append(("a list", good.tolist()))
    return out


def _tensor_specs(spec):
    spec = _unwrap(spec)
    if isinstance(spec, V.TensorSpec):
        return [spec]
    if isinstance(spec, V._Optional):
        return _tensor_specs(spec.spec)
    if isinstance(spec, V._Plain) and spec.union is not None:
        return [t for s in spec.union for t in _tensor_specs(s)]
    if isinstance(spec, V._Fixed):
        return [t for s in spec.items for t in _tensor_specs(s)]
    return []


NAME_RULE_EXEMPT = {
    ("scaling.PowerLawFit", "alpha"): "a fitted exponent, not a probability",
    ("lora.LoRALinear", "alpha"): "LoRA's scale numerator (the update is scaled by alpha / r), any positive number",
    ("lora.add_lora", "alpha"): "LoRA's scale numerator (the update is scaled by alpha / r), any positive number",
    ("distributed.DataParallelConfig", "lr"): "0 is allowed: it keeps the initial weights (the untrained loss)",
}
# Dataclasses that utils returns and readers only read: their numbers may be NaN or infinite (a diverged
# run, an empty metric), so only the NaN/infinity rule is lifted; every other rule holds.
RESULT_RECORDS = {"conv_explorer.ConvStep", "distributed.TrainResult", "rnn_models.MemoryRun", "rnn_models.GateView",
                  "scaling.LMRun", "scaling.PowerLawFit", "scaling.CostEstimate", "transformer.TrainResult",
                  "training.History", "rnn.GRUTrace", "rnn.LSTMTrace", "rnn.ManualGateTrace", "optim.RaceResult",
                  "sampling.Filtered", "search.SearchResult", "tokenization.TokenizedText", "data.DigitsSplit",
                  "text_data.LMSplit"}


def _bad_values(ident, checker, params, good, sizes) -> list[tuple[str, str, object]]:
    """Every bad value for every parameter: ``(parameter, label, value)``."""
    out = []
    bound = set(checker.self_dims)  # dimensions fixed before this parameter is checked
    for p in params:
        spec, g = checker.specs[p.name], good[p.name]
        if p.kind == p.VAR_POSITIONAL:
            g = g[0]
        if g is None and isinstance(spec, V._Optional):
            try:
                g = _good(spec.spec, sizes)  # test the declared kind behind "or None" too
            except LookupError:
                pass
        values = _derived(spec, p.name, g, sizes, bound) + _universal(spec, p.name, g)
        if ident in RESULT_RECORDS:
            values = [(label, v) for label, v in values if not (isinstance(v, float) and not math.isfinite(v))]
        if (ident, p.name) not in NAME_RULE_EXEMPT:
            values += _by_name(p.name, g)
        for label, bad in values:
            out.append((p.name, label, [bad] if p.kind == p.VAR_POSITIONAL else bad))
        if good[p.name] is not None:
            bound |= {d for t in _tensor_specs(spec) for d in t.fixed}
    return out


def _expect_rejected(target, params, good, name: str, bad, label: str) -> str | None:
    """None if the call rejects ``bad`` for ``name`` as it should, else what went wrong."""
    kwargs = dict(good)
    kwargs[name] = bad
    try:
        _call(target, params, kwargs)
    except (ValueError, TypeError) as exc:
        if re.search(rf"\b{re.escape(name)}\b", str(exc)):
            return None
        return f"{name} = {label}: {type(exc).__name__} does not name {name!r}: {exc}"
    except Exception as exc:  # noqa: BLE001 (any other exception is the failure we look for)
        return f"{name} = {label}: {type(exc).__name__} instead of ValueError/TypeError: {exc}"
    return f"{name} = {label}: accepted silently"


IDS = [i for i, _, _ in WITH_PARAMS]


@pytest.mark.parametrize("ident, owner, method", WITH_PARAMS, ids=IDS)
def test_each_kind_of_bad_input_is_rejected_and_named(ident, owner, method):
    target, checker, params, good, sizes = _prepare(owner, method)
    problems = [p for name, label, bad in _bad_values(ident, checker, params, good, sizes)
                if (p := _expect_rejected(target, params, good, name, bad, label))]
    assert not problems, f"{ident}:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------- hypothesis

def _strategy(spec, good):
    """Values outside what ``spec`` declares."""
    spec = _unwrap(spec)
    junk = st.one_of(st.none(), st.text(max_size=8), st.builds(_Opaque), st.lists(st.integers(), max_size=3))
    if isinstance(spec, V._Optional):
        return _strategy(spec.spec, good).filter(lambda v: v is not None)
    if isinstance(spec, V.Range):
        parts = [st.text(max_size=8), st.booleans(), st.builds(_Opaque)]
        if spec.integer:
            if spec.lo is not None:
                parts.append(st.integers(max_value=int(spec.lo) - 1))
            if spec.hi is not None:
                parts.append(st.integers(min_value=int(spec.hi) + 1))
            parts.append(st.floats(allow_nan=True))
        else:
            parts.append(st.sampled_from([math.nan, math.inf, -math.inf]))
            if spec.lo is not None:
                parts.append(st.floats(max_value=spec.lo, exclude_max=not spec.lo_open, allow_nan=False))
            if spec.hi is not None:
                parts.append(st.floats(min_value=spec.hi, exclude_min=not spec.hi_open, allow_nan=False))
        return st.one_of(parts)
    if isinstance(spec, V.Choice):
        return st.one_of(st.text(max_size=12).filter(lambda s: s not in spec.options), st.floats(), st.builds(_Opaque))
    if isinstance(spec, V.TensorSpec) and isinstance(good, torch.Tensor):
        shapes = st.lists(st.integers(0, 4), max_size=5)
        return st.one_of(junk, shapes.map(lambda s: torch.zeros(s, dtype=good.dtype)),
                         st.sampled_from([torch.float64, torch.float16, torch.int32, torch.int64, torch.bool,
                                          torch.uint8]).map(lambda d: good.to(d)))
    if isinstance(spec, V._Plain) and spec.hint is bool:
        return st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats())
    return junk


def _rejects(target, checker, name, value, good, params) -> bool:
    """Whether the declaration (with the other arguments of the good call) rejects ``value``."""
    kwargs = dict(good)
    kwargs[name] = value
    owner = getattr(target, "__self__", None)  # a bound method: its checks may read ``self``
    try:
        checker.run(() if owner is None else (owner,),
                    {p.name: kwargs[p.name] for p in params if p.kind != p.VAR_POSITIONAL})
    except (ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("ident, owner, method", WITH_PARAMS, ids=IDS)
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_bad_values_are_rejected_and_named(ident, owner, method, data):
    key = f"prepared:{ident}"
    if key not in _CACHE:
        _CACHE[key] = _prepare(owner, method)
    target, checker, params, good, sizes = _CACHE[key]
    p = data.draw(st.sampled_from([p for p in params if p.kind != p.VAR_POSITIONAL] or params), label="parameter")
    spec, g = checker.specs[p.name], good[p.name]
    value = data.draw(_strategy(spec, g[0] if p.kind == p.VAR_POSITIONAL else g), label=p.name)
    if p.kind == p.VAR_POSITIONAL:
        value = [value]
    elif not _rejects(target, checker, p.name, value, good, params):
        return  # a random value that happens to be valid (e.g. a shape that fits): nothing to expect
    problem = _expect_rejected(target, params, good, p.name, value, repr(value)[:60])
    assert problem is None, f"{ident}: {problem}"


# ------------------------------------------------------------------------------- ids and labels

def _id_cases():
    from utils import distributed, efficiency, gpt, interpret, scaling, text_data, training, transformer

    g = gpt.GPT(gpt.GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    tt = transformer.TinyTransformer(transformer.TinyTransformerConfig(max_len=8, d_model=8, num_heads=2,
                                                                       num_layers=1, d_ff=16))
    mlp = scaling.CharMLP(scaling.CharMLPConfig(vocab_size=5, context_size=4))
    ids = lambda v, shape=(2, 4): torch.full(shape, v, dtype=torch.long)  # noqa: E731
    return {
        "GPT.forward idx": (10, lambda v: g(ids(v)), "idx"),
        "GPT.forward targets": (10, lambda v: g(ids(0), ids(v)), "targets"),
        "lm_loss targets": (5, lambda v: gpt.lm_loss(torch.randn(2, 4, 5), ids(v)), "targets"),
        "TinyTransformer idx": (10, lambda v: tt(ids(v)), "idx"),
        "train_sequence_model y": (10, lambda v: transformer.train_sequence_model(
            tt, ids(0), ids(v), ids(0), ids(0), steps=1), "y"),
        "CharMLP idx": (5, lambda v: mlp(ids(v)), "idx"),
        "evaluate_char_lm y": (5, lambda v: scaling.evaluate_char_lm(mlp, ids(0), ids(v, (2,))), "y"),
        "train_char_lm train": (5, lambda v: scaling.train_char_lm(mlp, ids(v, (20,)), ids(0, (20,)), steps=1),
                                "train"),
        "distillation_loss targets": (3, lambda v: efficiency.distillation_loss(
            torch.randn(2, 3), torch.randn(2, 3), ids(v, (2,))), "targets"),
        "distillation_dataset y": (3, lambda v: efficiency.distillation_dataset(
            torch.randn(2, 4), ids(v, (2,)), torch.randn(2, 3)), "y"),
        "accuracy targets": (3, lambda v: training.accuracy(torch.randn(2, 3), ids(v, (2,))), "targets"),
        "class_score target": (2, lambda v: interpret.class_score(nn.Linear(4, 2), torch.randn(3, 4), v), "target"),
        "CharVocab.decode ids": (6, lambda v: text_data.CharVocab("abcdef").decode([0, v]), "ids"),
        "train_single_process y": (10, lambda v: distributed.train_single_process(
            torch.randn(8, 64), ids(v, (8,)), distributed.DataParallelConfig(world_size=1, steps=1,
                                                                          global_batch_size=4)), "y"),
    }


ID_CASES = _id_cases()


@pytest.mark.parametrize("case", sorted(ID_CASES))
@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(offset=st.integers(0, 10**6), negative=st.booleans())
def test_out_of_range_ids_and_labels_are_rejected_and_named(case, offset, negative):
    upper, call, name = ID_CASES[case]
    value = -1 - offset if negative else upper + offset
    if case.startswith("class_score") and negative:
        value = upper + offset  # a negative int class index is rejected as a type error elsewhere
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        call(value)
