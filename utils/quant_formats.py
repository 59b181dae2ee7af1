"""The block formats llama.cpp stores weights in (GGUF): Q4_1 and Q8_0, read and written from scratch.

Explained in chapter 4, "Quantizing a real LLM". SmolLM2-135M-Instruct ships as a GGUF file whose
Linear weights are **Q4_1** and whose token embedding is **Q8_0**. Both cut a row of weights into
blocks of 32 and store one or two float16 numbers per block plus a small integer per weight:

- Q4_1, 20 bytes per block (5 bits per weight): a scale ``d`` and a minimum ``m`` (float16), then 32
  codes of 4 bits, two per byte (byte j holds code j in its low nibble and code j + 16 in its high one).
  ``w = d * q + m`` with ``q`` in 0..15, ``d = (max - min) / 15``, ``m = min`` of the block.
- Q8_0, 34 bytes per block (8.5 bits per weight): a scale ``d`` (float16) and 32 signed bytes,
  ``w = d * q`` with ``q`` in -127..127, ``d = max|w| / 127``.

:func:`quantize_linear_int8` is PyTorch's dynamic int8 quantization (one scale per weight tensor,
activations quantized on the fly) of a chosen subset of a model's ``nn.Linear`` layers.

The block functions below follow ggml's reference code (and the ``gguf`` package's numpy port, which the
tests compare with), on ``numpy`` arrays: ``raw`` is ``(n_blocks, bytes per block)`` of uint8.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np
from torch import nn

from utils._validate import OneOf, check, checked

__all__ = ["BLOCK", "BYTES_PER_BLOCK", "bits_per_weight", "q4_1_quantize", "q4_1_dequantize", "q8_0_quantize",
           "q8_0_dequantize", "read_gguf_tensor", "gguf_tensor_table", "quantize_linear_int8"]

BLOCK = 32  # weights per block, both formats
BYTES_PER_BLOCK = {"Q4_1": 2 + 2 + BLOCK // 2, "Q8_0": 2 + BLOCK, "F16": 2 * BLOCK, "F32": 4 * BLOCK}
Weights = Annotated[np.ndarray, "a NumPy array of weights whose size is a multiple of 32"]
RawBlocks = Annotated[np.ndarray, "a NumPy uint8 array of whole blocks"]
GGUFPath = Annotated[str | Path, "the path of a GGUF file"]


@checked
def bits_per_weight(fmt: OneOf("F16", "F32", "Q4_1", "Q8_0")) -> float:
    """Storage per weight, scales included: Q4_1 5.0, Q8_0 8.5, F16 16, F32 32."""
    return 8 * BYTES_PER_BLOCK[fmt] / BLOCK


def _blocks(w: np.ndarray) -> np.ndarray:
    check(w.size % BLOCK == 0 and w.size > 0, "w", f"a non-empty array whose size is a multiple of {BLOCK}",
          f"{w.size} weights (shape {w.shape})")
    check(np.issubdtype(w.dtype, np.number) and not np.issubdtype(w.dtype, np.complexfloating), "w",
          "an array of real numbers", w.dtype)
    w = np.asarray(w, dtype=np.float32)
    check(bool(np.isfinite(w).all()), "w", "finite weights", "NaN or infinity")
    return w.reshape(-1, BLOCK)  # (n_blocks, 32)


def _raw(raw: np.ndarray, fmt: str) -> np.ndarray:
    check(raw.dtype == np.uint8, "raw", f"{fmt} blocks as uint8 bytes", raw.dtype)
    check(raw.size % BYTES_PER_BLOCK[fmt] == 0 and raw.size > 0, "raw",
          f"{fmt} data: a non-zero multiple of {BYTES_PER_BLOCK[fmt]} bytes", f"{raw.size} bytes")
    raw = np.ascontiguousarray(raw)
    return raw.reshape(-1, BYTES_PER_BLOCK[fmt])  # (n_blocks, bytes per block)


@checked
def q4_1_quantize(w: Weights) -> np.ndarray:
    """Weights (any shape, size a multiple of 32) -> Q4_1 blocks ``(n_blocks, 20)`` uint8."""
    x = _blocks(w)
    lo, hi = x.min(-1, keepdims=True), x.max(-1, keepdims=True)  # (n, 1)
    d = (hi - lo) / 15  # 16 levels from min to max
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.trunc((x - lo) * inv + np.float32(0.5)), 0, 15).astype(np.uint8)  # (n, 32) round to nearest level
    packed = q[:, :BLOCK // 2] | (q[:, BLOCK // 2:] << 4)  # (n, 16): codes j and j + 16 share byte j
    return np.concatenate([d.astype(np.float16).view(np.uint8), lo.astype(np.float16).view(np.uint8), packed], axis=1)


@checked
def q4_1_dequantize(raw: RawBlocks) -> np.ndarray:
    """Q4_1 blocks -> float32 weights ``(n_blocks * 32,)``: ``d * q + m`` per block."""
    b = _raw(raw, "Q4_1")
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    m = b[:, 2:4].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = b[:, 4:]  # (n, 16)
    q = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.float32)  # (n, 32): low nibbles first
    return (d * q + m).reshape(-1)


@checked
def q8_0_quantize(w: Weights) -> np.ndarray:
    """Weights (size a multiple of 32) -> Q8_0 blocks ``(n_blocks, 34)`` uint8."""
    x = _blocks(w)
    d = np.abs(x).max(-1, keepdims=True) / 127  # (n, 1)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.round(x * inv).astype(np.int8)  # (n, 32), round half to even as numpy (ggml rounds half away; ties are rare)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1)


@checked
def q8_0_dequantize(raw: RawBlocks) -> np.ndarray:
    """Q8_0 blocks -> float32 weights ``(n_blocks * 32,)``: ``d * q`` per block."""
    b = _raw(raw, "Q8_0")
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    q = b[:, 2:].copy().view(np.int8).astype(np.float32)  # (n, 32)
    return (d * q).reshape(-1)


def _gguf_file(path: str | Path) -> str:
    """The resolved path of an existing GGUF file (its first four bytes are ``GGUF``)."""
    p = Path(path)
    check(str(path) != "" and p.is_file(), "path", "the path of an existing GGUF file", str(path))
    with open(p, "rb") as f:
        check(f.read(4) == b"GGUF", "path", "a GGUF file (it starts with the bytes GGUF)", str(path))
    return str(p.resolve())


@lru_cache(maxsize=2)
def _reader(path: str):
    from gguf import GGUFReader

    return GGUFReader(path)  # parses the header (and the 49k-token vocabulary) once; tensors stay memory-mapped


@checked
def read_gguf_tensor(path: GGUFPath, name: str) -> tuple[np.ndarray, str, tuple[int, ...]]:
    """``(raw bytes, format name, shape)`` of one tensor of a GGUF file, the shape in PyTorch's order
    (rows, columns); GGUF lists dimensions the other way round. Needs the ``gguf`` package."""
    tensors = _reader(_gguf_file(path)).tensors
    for t in tensors:
        if t.name == name:
            shape = tuple(int(s) for s in reversed(t.shape.tolist()))
            return np.asarray(t.data).view(np.uint8).reshape(-1), t.tensor_type.name, shape
    check(False, "name", f"the name of a tensor in {Path(path).name} (e.g. {tensors[0].name!r})", repr(name))


@checked
def gguf_tensor_table(path: GGUFPath) -> list[tuple[str, str, tuple[int, ...], int]]:
    """``(name, format, shape in PyTorch's order, bytes)`` of every tensor stored in a GGUF file."""
    return [(t.name, t.tensor_type.name, tuple(int(s) for s in reversed(t.shape.tolist())), int(t.n_bytes))
            for t in _reader(_gguf_file(path)).tensors]


@checked
def quantize_linear_int8(model: nn.Module, *, skip: str | Sequence[str] = ()):
    """A copy of ``model`` (on the CPU) whose ``nn.Linear`` layers use int8 weights and dynamically
    quantized activations (``torch.ao.quantization.quantize_dynamic``), except the layers whose name
    contains one of ``skip`` (e.g. ``("down_proj",)``), which stay float32. The original is unchanged."""
    import copy
    import warnings

    import torch

    if isinstance(skip, str):
        skip = (skip,)
    cpu_copy = copy.deepcopy(model).to("cpu").eval()
    names = {n for n, m in cpu_copy.named_modules() if isinstance(m, nn.Linear) and not any(s in n for s in skip)}
    check(bool(names), "skip", "names that leave at least one nn.Linear to quantize", skip)
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # PyTorch marks the eager API deprecated in favour of torchao; it works in 2.13
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        return quantize_dynamic(cpu_copy, names, dtype=torch.qint8, inplace=True)
