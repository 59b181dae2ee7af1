"""A small GPT (decoder-only Transformer) in the GPT-2 layout, and its bridge to ``transformers``.

Explained in chapter 4, "Pretraining a tiny GPT". Our ``GPT`` is written to be read (one class
per block, a shape comment on every reshape, in the spirit of nanoGPT) and has exactly the
parameters of ``transformers.GPT2LMHeadModel`` for the same config: :func:`to_hf_gpt2` copies
the weights across (GPT-2 stores its projections as ``Conv1D``, i.e. transposed) and the two
give the same logits and loss (tested). We keep ours because it shows every step and returns
attention weights on request; the ``transformers`` one brings ``generate``, ``pipeline`` and
``save_pretrained``.

Shapes: B batch, T sequence length (<= block_size), C = n_embd, nh heads, hs = C // nh, V vocab.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Device, Dropout, Float, Int, PosInt, Tensor, check, check_ids, checked

__all__ = ["GPTConfig", "GPT", "to_hf_gpt2", "from_hf_gpt2", "hf_config", "lm_loss", "train_flops_per_token",
           "save_checkpoint", "load_checkpoint", "load_tiny_gpt", "estimate_loss"]


@checked
@dataclass
class GPTConfig:
    vocab_size: PosInt = 96  # V: number of token ids
    block_size: PosInt = 64  # longest context the position table covers
    n_layer: PosInt = 4  # Transformer blocks
    n_head: PosInt = 4  # attention heads per block; must divide n_embd
    n_embd: PosInt = 128  # C: width of the residual stream
    dropout: Dropout = 0.0  # on attention weights and residual branches (0 for small data runs we can repeat)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask; one packed ``c_attn`` projection as in GPT-2."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        mask = torch.tril(torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, cfg.block_size, cfg.block_size), persistent=False)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if return_weights:  # the explicit path: scores, mask, softmax (what the chapter explains)
            scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, nh, T, T)
            scores = scores.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
            weights = self.attn_dropout(scores.softmax(dim=-1))
            y = weights @ v  # (B, nh, T, hs)
        else:  # the fused kernel computes the same thing (tested), faster
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.attn_dropout.p if self.training else 0.0)
            weights = None
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side again
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if return_weights else y


class MLP(nn.Module):
    """Position-wise feed-forward network: C -> 4C -> C with GELU (tanh approximation, as GPT-2)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        if return_weights:
            a, w = self.attn(self.ln_1(x), return_weights=True)
            x = x + a
            return x + self.mlp(self.ln_2(x)), w
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@checked
class GPT(nn.Module):
    """Token + position embeddings, ``n_layer`` blocks, a final LayerNorm and a language-model head
    tied to the token embedding (as GPT-2). ``forward(idx (B, T)) -> logits (B, T, V)``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one (V, C) matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @checked
    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied head counted once); ``non_embedding`` leaves out the position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def _check(self, idx: torch.Tensor) -> None:
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be a (B, T) tensor of token ids (int64), got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} of shape {tuple(getattr(idx, 'shape', ()))}")
        if idx.shape[1] > self.config.block_size:
            raise ValueError(f"sequence length T={idx.shape[1]} exceeds block_size={self.config.block_size}; "
                             "crop the context to its last block_size tokens")

    @checked
    def forward(self, idx: Int[Tensor, "B T"], targets: Int[Tensor, "B T"] | None = None, *,
                return_attention: bool = False):
        """Logits ``(B, T, V)``; with ``targets`` ``(B, T)`` also the mean cross-entropy, with
        ``return_attention`` also the list of per-layer attention weights ``(B, nh, T, T)``."""
        self._check(idx)
        check_ids("idx", idx, self.config.vocab_size)
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        attn = []
        for block in self.h:
            if return_attention:
                x, w = block(x, return_weights=True)
                attn.append(w)
            else:
                x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        out = [logits]
        if targets is not None:
            out.append(lm_loss(logits, targets))
        if return_attention:
            out.append(attn)
        return out[0] if len(out) == 1 else tuple(out)


@checked
def lm_loss(logits: Float[Tensor, "B T V"], targets: Int[Tensor, "B T"]) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)``, in nats."""
    check_ids("targets", targets, logits.shape[-1])
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"targets must have shape (B, T) = {tuple(logits.shape[:2])}, got {tuple(targets.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
@checked
def estimate_loss(model: nn.Module, data: Int[Tensor, "N"], block_size: PosInt, *, batches: PosInt = 10,
                  batch_size: PosInt = 32, device: Device = "cpu") -> float:
    """Mean next-token loss (nats per token) of ``model`` on ``batches`` fixed windows of ``data``
    (1-D token ids; batch ``i`` uses seed ``i``, so every call sees the same windows). ``model(x, y)``
    must return ``(logits, loss)`` like :class:`GPT`; the model is put back in its previous mode."""
    from utils.text_data import get_batch

    was_training = model.training
    model.eval()
    losses = [model(*get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(i),
                               device=device))[1].item() for i in range(batches)]
    model.train(was_training)
    return sum(losses) / len(losses)


@checked
def train_flops_per_token(model: GPT, seq_len: PosInt | None = None) -> float:
    """Training FLOPs per token: 6 N (weights, forward + backward) + 12 L T C (attention scores),
    with N the non-embedding parameters (the rule of thumb of Kaplan et al., 2020)."""
    cfg = model.config
    T = seq_len or cfg.block_size
    return 6 * model.num_parameters(non_embedding=True) + 12 * cfg.n_layer * T * cfg.n_embd


@checked
def hf_config(cfg: GPTConfig):
    """The ``transformers.GPT2Config`` of the same shape (GELU tanh, LayerNorm eps 1e-5, tied head)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                      n_layer=cfg.n_layer, n_head=cfg.n_head, activation_function="gelu_new",
                      resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                      layer_norm_epsilon=1e-5, tie_word_embeddings=True, bos_token_id=None,
                      eos_token_id=None, loss_type="ForCausalLM")


_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@checked
def to_hf_gpt2(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` with our weights (Conv1D weights are our Linear weights
    transposed). Same logits and loss as ``model`` (tested)."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(hf_config(model.config)).to(next(model.parameters()).dtype)
    hf.loss_type = "ForCausalLM"  # transformers 5 warns about loss_type=None otherwise
    ours = model.state_dict()
    with torch.no_grad():
        for name, p in hf.transformer.state_dict().items():
            if name.endswith((".attn.bias", ".attn.masked_bias")):
                continue  # buffers of older versions
            src = ours[name]
            p.copy_(src.T if name.endswith(_CONV1D) else src)
    hf.tie_weights()
    return hf.eval() if not model.training else hf


@checked
def from_hf_gpt2(hf: nn.Module) -> GPT:
    """Our :class:`GPT` with the weights of a ``GPT2LMHeadModel`` (the inverse of :func:`to_hf_gpt2`)."""
    check(type(hf).__name__ == "GPT2LMHeadModel", "hf", "a transformers GPT2LMHeadModel", type(hf).__name__)
    c = hf.config
    model = GPT(GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                          n_embd=c.n_embd)).to(next(hf.parameters()).dtype)
    theirs = hf.transformer.state_dict()
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name == "lm_head.weight":
                continue  # tied to wte
            src = theirs[name]
            p.copy_(src.T if name.endswith(_CONV1D) else src)
    return model


@checked
def save_checkpoint(model: GPT, folder: str | Path, *, chars: list[str] | None = None, meta: dict | None = None) -> Path:
    """Write ``model.safetensors`` (weights only, no pickle), ``config.json`` and, for a
    character-level model, ``vocab.json`` (the characters in id order) into ``folder``."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / "model.safetensors"))  # stores the tied head once
    (folder / "config.json").write_text(json.dumps({**asdict(model.config), **({"meta": meta} if meta else {})},
                                                   indent=2, ensure_ascii=False))
    if chars is not None:
        (folder / "vocab.json").write_text(json.dumps(chars, ensure_ascii=False))
    return folder


@checked
def load_checkpoint(folder: str | Path, *, device: Device = "cpu") -> tuple[GPT, list[str] | None]:
    """Load what :func:`save_checkpoint` wrote: ``(model in eval mode, chars or None)``. Weights are
    read with safetensors, which cannot run code."""
    from safetensors.torch import load_model

    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors in {folder}")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("meta", None)
    model = GPT(GPTConfig(**cfg))
    load_model(model, str(folder / "model.safetensors"), device=str(device))
    vocab = folder / "vocab.json"
    chars = json.loads(vocab.read_text()) if vocab.is_file() else None
    return model.to(device).eval(), chars


@checked
def load_tiny_gpt(device: Device = "cpu") -> tuple[GPT, list[str], dict]:
    """The character-level GPT pretrained by this project on the book's corpus
    (``tools/train_tiny_gpt.py``; shipped in ``utils/resources/tiny_gpt``): ``(model, chars, meta)``."""
    folder = Path(str(resources.files("utils") / "resources" / "tiny_gpt"))
    model, chars = load_checkpoint(folder, device=device)
    meta = json.loads((folder / "config.json").read_text()).get("meta", {})
    return model, chars, meta
