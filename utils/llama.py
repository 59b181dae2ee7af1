"""A Llama (the layout of Llama 2/3, SmolLM2, Mistral) written to be read, with a KV cache.

Explained in chapter 4, "A real LLM: from weights to chat". Compared with the GPT-2 layout of
:mod:`utils.gpt` it changes five things: RMSNorm instead of LayerNorm (no mean, no bias);
rotary position embeddings on q and k instead of a learned position table (:mod:`utils.positional`,
``layout="half"`` as Hugging Face stores Llama checkpoints); grouped-query attention (``n_kv_head``
key/value heads shared by ``n_head`` query heads); a SwiGLU MLP ``down(silu(gate(x)) * up(x))``;
no biases anywhere. Module names follow ``transformers.LlamaForCausalLM`` so :func:`from_hf`
copies its weights one to one; the two give the same logits (tested, float64 and on SmolLM2).

Shapes: B batch, T new tokens, P tokens already in the cache, C = dim, nh query heads,
nkv key/value heads, hs = C // nh head size, H MLP hidden width, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from utils import normalization
from utils._validate import Float, Int, NonNegInt, PosFloat, PosInt, Tensor, check, check_ids, checked, validation
from utils.positional import apply_rope, rope_angles
from utils.sampling import TopP, sample_next

__all__ = ["LlamaConfig", "RMSNorm", "KVCache", "Attention", "SwiGLU", "Block", "Llama", "from_hf",
           "kv_cache_bytes", "parameter_breakdown"]

TokenIds = Annotated[Int[Tensor, "B T"], "a (B, T) tensor of token ids (int64)"]


@checked
@dataclass
class LlamaConfig:
    vocab_size: PosInt = 49152  # V
    dim: PosInt = 576  # C: width of the residual stream
    n_layer: PosInt = 30
    n_head: PosInt = 9  # query heads
    n_kv_head: PosInt = 3  # key/value heads (GQA); = n_head is plain multi-head attention, 1 is multi-query
    hidden_dim: PosInt = 1536  # H: SwiGLU width
    norm_eps: PosFloat = 1e-5
    rope_base: PosFloat = 100000.0
    max_seq_len: PosInt = 8192  # rows of the rotary table
    tie_embeddings: bool = True  # lm_head shares embed_tokens' (V, C) matrix

    def __post_init__(self) -> None:
        check(self.dim % self.n_head == 0 and self.head_dim % 2 == 0, "dim",
              f"n_head ({self.n_head}) times an even head size", self.dim)
        check(self.n_head % self.n_kv_head == 0, "n_head", f"a multiple of n_kv_head ({self.n_kv_head})", self.n_head)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head


@checked
class RMSNorm(normalization.RMSNorm):
    """x / sqrt(mean(x^2) + eps) * weight over the last axis: LayerNorm without the mean and the bias.
    The module of :mod:`utils.normalization` (computed in float32 for half-precision inputs, as
    ``transformers``' LlamaRMSNorm), with Llama's default ``eps`` of 1e-5."""

    def __init__(self, dim: PosInt, eps: PosFloat = 1e-5) -> None:
        super().__init__(dim, eps)


@checked
class KVCache:
    """The keys and values every layer has computed so far, ``(B, nkv, P, hs)`` per layer.

    Decoding one token then costs one new row of q, k, v per layer instead of recomputing all
    P + 1 rows. New rows are appended on the time axis (dim 2).
    """

    def __init__(self, n_layer: PosInt) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    def __len__(self) -> int:
        """P: tokens held (those of layer 0, which a forward pass updates first)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    @checked
    def update(self, layer: NonNegInt, k: Float[Tensor, "B nkv T hs"],
               v: Float[Tensor, "B nkv T hs"]) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k, v (B, nkv, T, hs)``; return all keys and values ``(B, nkv, P + T, hs)``."""
        check(layer < len(self.keys), "layer", f"below the cache's n_layer = {len(self.keys)}", layer)
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)  # (B, nkv, P + T, hs): time is axis 2
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)


@checked
def kv_cache_bytes(cfg: LlamaConfig, seq_len: PosInt, *, batch: PosInt = 1, bytes_per_value: PosInt = 4) -> int:
    """Memory of a full KV cache: 2 (k and v) x layers x B x nkv x T x hs x bytes."""
    return 2 * cfg.n_layer * batch * cfg.n_kv_head * seq_len * cfg.head_dim * bytes_per_value


@checked
class Attention(nn.Module):
    """Causal grouped-query self-attention with rotary q and k and an optional KV cache."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.dim, self.nh, self.nkv, self.hs = cfg.dim, cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_head * self.hs, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_head * self.hs, bias=False)  # GQA: fewer k, v heads
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_head * self.hs, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * self.hs, cfg.dim, bias=False)

    @checked(dims={"C": "dim"})
    def forward(self, x: Float[Tensor, "B T C"], cos: Float[Tensor, "L half"], sin: Float[Tensor, "L half"], *,
                cache: KVCache | None = None, layer: NonNegInt = 0, start: NonNegInt = 0, return_weights: bool = False):
        """``x (B, T, C)`` at positions ``start .. start + T - 1`` -> ``(B, T, C)`` (and the weights
        ``(B, nh, T, P + T)`` with ``return_weights``); with ``cache`` the new k, v are appended to ``layer``'s."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)  # (B, nkv, T, hs)
        q = apply_rope(q, cos, sin, offset=start, layout="half")  # rows are positions start .. start + T - 1
        k = apply_rope(k, cos, sin, offset=start, layout="half")
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nkv, P + T, hs) with P = start
        S = k.shape[2]  # keys visible: P + T
        mask = None
        if T > 1 and S > T:  # new tokens after cached ones: query t sees keys 0 .. S - T + t
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)  # (T, S)
        if return_weights:  # the explicit path, for attention maps
            group = self.nh // self.nkv
            k = k.repeat_interleave(group, dim=1)  # (B, nh, S, hs): query head j reads kv head j // group
            v = v.repeat_interleave(group, dim=1)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.hs)  # (B, nh, T, S)
            keep = mask if mask is not None else torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            weights = scores.masked_fill(~keep, float("-inf")).softmax(dim=-1)
            y = weights @ v  # (B, nh, T, hs)
        else:  # the fused kernel does the same; enable_gqa shares each kv head without copying it
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and T > 1,
                                               enable_gqa=self.nkv != self.nh)
            weights = None
        y = self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hs))  # (B, T, C)
        return (y, weights) if return_weights else y


@checked
class SwiGLU(nn.Module):
    """The gated MLP: down(silu(gate(x)) * up(x)), C -> H -> C, three matrices and no biases."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.dim = cfg.dim  # C
        self.gate_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.down_proj = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    @checked(dims={"C": "dim"})
    def forward(self, x: Float[Tensor, "... C"]) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # (B, T, C)


@checked
class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)), as GPT-2 but with RMSNorm."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    @checked(dims={"C": "self_attn.dim"})
    def forward(self, x: Float[Tensor, "B T C"], cos: Float[Tensor, "L half"], sin: Float[Tensor, "L half"], *,
                cache: KVCache | None = None, layer: NonNegInt = 0, start: NonNegInt = 0, return_weights: bool = False):
        a = self.self_attn(self.input_layernorm(x), cos, sin, cache=cache, layer=layer, start=start,
                           return_weights=return_weights)
        a, w = a if return_weights else (a, None)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return (x, w) if return_weights else x


def _rope_tables(cfg: LlamaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary ``(cos, sin)`` tables with angles rounded to float32 as ``transformers`` computes them
    (the checkpoint was trained that way; float64 angles move SmolLM2's logits by ~2e-4 at 512 tokens)."""
    return rope_angles(cfg.max_seq_len, cfg.head_dim, base=cfg.rope_base, compute_dtype=torch.float32)


@checked
class Llama(nn.Module):
    """Token embedding, ``n_layer`` blocks, a final RMSNorm and a (tied) head. No position table:
    positions enter only through the rotation of q and k. ``forward(idx (B, T)) -> logits (B, T, V)``."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight  # one (V, C) matrix reads and writes tokens
        cos, sin = _rope_tables(cfg)  # (max_seq_len, hs/2)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for p in self.parameters():
            if p.ndim == 2:
                nn.init.normal_(p, std=0.02)

    def num_parameters(self) -> int:
        """Parameter count, a tied head counted once."""
        return sum(p.numel() for p in self.parameters())

    @checked
    def forward(self, idx: TokenIds, *, cache: KVCache | None = None, last_only: bool = False,
                return_attention: bool = False):
        """Logits ``(B, T, V)`` (``(B, 1, V)`` with ``last_only``). With ``cache`` the T tokens
        continue the P cached ones: they get positions P .. P + T - 1 and their k, v are appended.
        With ``return_attention`` also the per-layer weights ``(B, nh, T, P + T)``."""
        check_ids("idx", idx, self.config.vocab_size)
        if cache is not None:
            check(len(cache.keys) == self.config.n_layer, "cache", f"a KVCache of {self.config.n_layer} layers",
                  f"one of {len(cache.keys)}")
        start = len(cache) if cache is not None else 0  # P, read before layer 0 appends
        T, max_len = idx.shape[1], self.config.max_seq_len
        check(start + T <= max_len, "idx", f"at most {max_len - start} tokens (P = {start} cached)",
              f"{T}: positions up to {start + T} exceed max_seq_len={max_len}")
        # idx and cache are checked above; the blocks check their own inputs only when called alone (inside
        # this loop those checks would repeat 4 x n_layer times per token: about 6 % of decoding, measured)
        with validation(False):
            x = self.embed_tokens(idx)  # (B, T, C)
            maps = []
            for i, block in enumerate(self.layers):
                x = block(x, self.rope_cos, self.rope_sin, cache=cache, layer=i, start=start,
                          return_weights=return_attention)
                if return_attention:
                    x, w = x
                    maps.append(w)
            if last_only:
                x = x[:, -1:]  # (B, 1, C): generation needs only the next-token distribution
            logits = self.lm_head(self.norm(x))  # (B, T, V)
        return (logits, maps) if return_attention else logits

    @torch.no_grad()
    @checked
    def generate(self, idx: TokenIds, max_new_tokens: NonNegInt, *, use_cache: bool = True, greedy: bool = False,
                 temperature: PosFloat = 1.0, top_k: PosInt | None = None, top_p: TopP | None = None,
                 generator: torch.Generator | None = None, eos_token_id: NonNegInt | None = None,
                 progress: bool = False) -> torch.Tensor:
        """Extend ``idx (B, T)`` by up to ``max_new_tokens`` tokens -> ``(B, T + new)``; sampling as
        :func:`utils.sampling.sample_next`. Stops early once every row has produced ``eos_token_id``.
        ``use_cache=False`` recomputes the whole sequence every step (the slow way, for comparison)."""
        check(eos_token_id is None or eos_token_id < self.config.vocab_size, "eos_token_id",
              f"a token id below vocab_size = {self.config.vocab_size}", eos_token_id)
        cache = KVCache(self.config.n_layer) if use_cache else None
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        step_input = idx
        for _ in tqdm(range(max_new_tokens), desc="decoding", disable=not progress, leave=False):
            logits = self(step_input if use_cache else idx, cache=cache, last_only=True)[:, -1]  # (B, V)
            nxt = sample_next(logits, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                              generator=generator)  # (B, 1)
            if eos_token_id is not None:
                nxt = nxt.masked_fill(done[:, None], eos_token_id)
                done |= nxt[:, 0] == eos_token_id
            idx = torch.cat([idx, nxt], dim=1)
            step_input = nxt  # with the cache only the new token goes in
            if eos_token_id is not None and bool(done.all()):
                break
        return idx


@checked
def from_hf(hf_model: nn.Module) -> Llama:
    """Our :class:`Llama` with the weights (copied) and dtype of a ``transformers.LlamaForCausalLM``."""
    check(type(hf_model).__name__.endswith("ForCausalLM"), "hf_model", "a transformers LlamaForCausalLM",
          type(hf_model).__name__)
    c = hf_model.config
    rope = getattr(c, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"hf_model: only plain RoPE is implemented, this checkpoint uses {rope.get('rope_type')!r}")
    cfg = LlamaConfig(vocab_size=c.vocab_size, dim=c.hidden_size, n_layer=c.num_hidden_layers,
                      n_head=c.num_attention_heads, n_kv_head=c.num_key_value_heads,
                      hidden_dim=c.intermediate_size, norm_eps=c.rms_norm_eps,
                      rope_base=float(rope.get("rope_theta", getattr(c, "rope_theta", 10000.0))),
                      max_seq_len=c.max_position_embeddings, tie_embeddings=bool(c.tie_word_embeddings))
    if getattr(c, "head_dim", cfg.head_dim) != cfg.head_dim:
        raise ValueError(f"hf_model: head_dim {c.head_dim} != hidden_size / num_attention_heads = {cfg.head_dim}")
    dtype = next(hf_model.parameters()).dtype
    with torch.device("meta"):
        model = Llama(cfg)
    theirs = {k.removeprefix("model."): v for k, v in hf_model.state_dict().items()}
    if cfg.tie_embeddings:
        theirs.pop("lm_head.weight", None)
    state = {k: v.detach().clone() for k, v in theirs.items()}
    model.load_state_dict(state, strict=False, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    missing = [k for k, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ValueError(f"hf_model: the checkpoint lacks {missing[:3]}")
    model.rope_cos, model.rope_sin = _rope_tables(cfg)
    return model.to(dtype=dtype, device=next(hf_model.parameters()).device).eval()


_PARTS = (("token embedding", ("embed_tokens", "wte")), ("position table", ("wpe",)),
          ("attention", ("attn.",)), ("MLP", ("mlp.",)), ("norms", ("norm", "ln_")), ("head", ("lm_head",)))


@checked
def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per part (token embedding, position table, attention, MLP, norms, untied head)
    of our :class:`Llama` or :class:`utils.gpt.GPT`; a tied head counts once, under the embedding."""
    counts = {part: 0 for part, _ in _PARTS}
    for name, p in model.named_parameters():  # named_parameters skips the second name of a tied tensor
        part = next((part for part, keys in _PARTS if any(k in name for k in keys)), None)
        if part is None:
            raise ValueError(f"parameter {name!r} belongs to no known part")
        counts[part] += p.numel()
    return counts
