"""utils.quant_formats against the gguf package's reference code, and against the weights transformers
de-quantizes from the packaged SmolLM2 file."""

import math

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from utils.quant_formats import (bits_per_weight, gguf_tensor_table, q4_1_dequantize, q4_1_quantize, q8_0_dequantize,
                                 q8_0_quantize, quantize_linear_int8, read_gguf_tensor)


def _weights(n=64 * 32, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, n).astype(np.float32)
    w[:32] = 0.25  # a constant block: scale 0
    return w


def test_q4_1_matches_gguf_both_ways():
    w = _weights()
    ours = q4_1_quantize(w)
    theirs = quants.quantize(w.reshape(-1, 256), GGMLQuantizationType.Q4_1).reshape(-1, 20)
    assert ours.shape == (64, 20) and np.array_equal(ours, theirs)
    back = q4_1_dequantize(ours)
    assert np.array_equal(back, quants.dequantize(theirs.reshape(-1), GGMLQuantizationType.Q4_1).reshape(-1))
    d = ours[:, :2].copy().view(np.float16).astype(np.float32)[:, 0]
    err = np.abs(back - w).reshape(-1, 32).max(1)
    assert (err <= d / 2 + 1e-3).all()  # at most half a step (plus float16 rounding of d and m)
    assert np.allclose(back[:32], 0.25, atol=1e-3)


def test_q8_0_matches_gguf_both_ways():
    w = _weights(seed=1)
    ours = q8_0_quantize(w)
    theirs = quants.quantize(w.reshape(-1, 256), GGMLQuantizationType.Q8_0).reshape(-1, 34)
    assert ours.shape == (64, 34) and (ours != theirs).mean() < 1e-3  # round-half ties may differ
    back = q8_0_dequantize(theirs)
    assert np.array_equal(back, quants.dequantize(theirs.reshape(-1), GGMLQuantizationType.Q8_0).reshape(-1))


def test_sizes_and_errors():
    assert (bits_per_weight("Q4_1"), bits_per_weight("Q8_0"), bits_per_weight("F32")) == (5.0, 8.5, 32.0)
    with pytest.raises(ValueError, match="multiple of 32"):
        q4_1_quantize(np.zeros(40))
    with pytest.raises(ValueError, match="multiple of 20 bytes"):
        q4_1_dequantize(np.zeros(30, dtype=np.uint8))
    with pytest.raises(ValueError, match="fmt must be one of"):
        bits_per_weight("Q3")


def test_the_packaged_file_dequantizes_to_the_weights_transformers_loads():
    from utils.llm import load_smollm2, smollm2_gguf_path

    _, model = load_smollm2()
    raw, fmt, shape = read_gguf_tensor(smollm2_gguf_path(), "blk.0.ffn_gate.weight")
    assert (fmt, shape) == ("Q4_1", (1536, 576)) and raw.size == 1536 * 576 // 32 * 20
    w = torch.from_numpy(q4_1_dequantize(raw).reshape(shape))
    assert torch.equal(w, model.model.layers[0].mlp.gate_proj.weight.detach())
    raw, fmt, shape = read_gguf_tensor(smollm2_gguf_path(), "token_embd.weight")
    assert (fmt, shape) == ("Q8_0", (49152, 576))
    emb = torch.from_numpy(q8_0_dequantize(raw[: 100 * 576 // 32 * 34]).reshape(100, 576))
    assert torch.equal(emb, model.model.embed_tokens.weight[:100].detach())
    with pytest.raises(ValueError, match="name must be the name of a tensor in SmolLM2"):
        read_gguf_tensor(smollm2_gguf_path(), "nope")
    table = gguf_tensor_table(smollm2_gguf_path())
    counts = {f: sum(1 for _, fmt, _, _ in table if fmt == f) for f in ("Q4_1", "Q8_0", "F32")}
    assert counts == {"Q4_1": 210, "Q8_0": 1, "F32": 61} and len(table) == 272
    assert sum(math.prod(shape) for _, _, shape, _ in table) == 134_515_008


def test_quantize_linear_int8_skips_the_named_layers_and_leaves_the_original():
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    q = quantize_linear_int8(model, skip=("2",))
    assert type(model[0]) is nn.Linear and q[0]._get_name() == "DynamicQuantizedLinear"
    assert type(q[2]) is nn.Linear
    x = torch.randn(5, 8)
    assert (q(x) - model(x)).abs().max() < 0.05
    with pytest.raises(ValueError, match="skip must be names that leave at least one nn.Linear"):
        quantize_linear_int8(model, skip=("0", "2"))
