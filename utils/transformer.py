"""The Transformer block and a tiny encoder-only Transformer for synthetic sequence tasks.

Explained in chapter 3, "The Transformer". A block is attention + residual + layer norm +
feed-forward (Vaswani et al., 2017, section 3.1), in the original post-LN order or the pre-LN
order that GPT-2 and most later models use. Positional encodings live in
:mod:`utils.positional`, attention in :mod:`utils.attention`.

Shapes: B batch, T sequence length, C model width (``d_model``), nh heads, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Dropout, Float, Int, OneOf, PosFloat, PosInt, Seed, Tensor, check, check_ids, checked
from utils.attention import Mask, MultiHeadAttention, causal_mask
from utils.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

__all__ = [
    "TransformerBlock",
    "block_param_count",
    "TinyTransformerConfig",
    "TinyTransformer",
    "TrainResult",
    "train_sequence_model",
    "token_accuracy",
]


@checked
class TransformerBlock(nn.Module):
    r"""One Transformer encoder block (a decoder block when ``causal=True``).

    post-LN (2017 paper):  x = LN(x + MHA(x));  x = LN(x + FFN(x))
    pre-LN (GPT-2 onward): x = x + MHA(LN(x));  x = x + FFN(LN(x))
    with FFN(x) = W_2 ReLU(W_1 x + b_1) + b_2 and W_1 of shape ``(d_ff, C)``.

    Submodule names match ``torch.nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``,
    ``linear2``, ``norm1``, ``norm2``), so ``block.load_state_dict(layer.state_dict())``
    copies its weights; the block returns the attention weights of every head as well.
    """

    def __init__(self, d_model: PosInt, num_heads: PosInt, d_ff: PosInt, *, dropout: Dropout = 0.0,
                 norm_first: bool = True, causal: bool = False) -> None:
        super().__init__()
        if isinstance(d_ff, bool) or not isinstance(d_ff, int) or d_ff <= 0:
            raise ValueError(f"d_ff must be a positive int, got {d_ff!r}")
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm_first, self.causal = norm_first, causal

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))  # (B, T, C)

    @checked(dims={"C": "self_attn.d_model"})
    def forward(self, x: Float[Tensor, "B T C"],
                mask: Mask | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, T, C)``, optional boolean ``mask`` (True = may attend) -> ``(x, weights)``
        with ``weights`` ``(B, nh, T, T)``. ``causal=True`` adds the causal mask."""
        if self.causal:
            cm = causal_mask(x.shape[1], device=x.device)  # (T, T)
            mask = cm if mask is None else mask & cm
        if self.norm_first:
            a, weights = self.self_attn(self.norm1(x), mask=mask)
            x = x + self.dropout(a)  # residual around attention
            x = x + self._ff(self.norm2(x))  # residual around the feed-forward network
        else:
            a, weights = self.self_attn(x, mask=mask)
            x = self.norm1(x + self.dropout(a))
            x = self.norm2(x + self._ff(x))
        return x, weights


@checked
def block_param_count(d_model: PosInt, d_ff: PosInt) -> dict[str, int]:
    """Parameters of one :class:`TransformerBlock` (with biases), by formula.

    attention: W_q, W_k, W_v, W_O (4 C²) + 4 biases (4C); feed-forward: 2 C d_ff + d_ff + C;
    two layer norms: 2 × (scale + shift) = 4C. Total 4C² + 2 C d_ff + d_ff + 9C.
    """
    C = d_model
    parts = {"attention": 4 * C * C + 4 * C, "feed_forward": 2 * C * d_ff + d_ff + C, "layer_norms": 4 * C}
    parts["total"] = sum(parts.values())
    return parts


@checked
@dataclass
class TinyTransformerConfig:
    vocab_size: PosInt = 10  # V: token ids 0 .. V-1
    max_len: PosInt = 16  # longest sequence the positional table covers
    d_model: PosInt = 64  # C: width of every token vector
    num_heads: PosInt = 4  # nh: hs = C / nh = 16
    num_layers: PosInt = 2  # blocks stacked
    d_ff: PosInt = 128  # hidden width of the feed-forward network
    dropout: Dropout = 0.0  # synthetic tasks do not overfit at this size
    positional: OneOf("learned", "sinusoidal") = "learned"  # "learned" or "sinusoidal"
    norm_first: bool = True  # pre-LN (GPT-2 onward): much less sensitive to warm-up than post-LN (Xiong et al., 2020)

    def __post_init__(self) -> None:
        check(self.d_model % self.num_heads == 0, "d_model", f"divisible by num_heads={self.num_heads}", self.d_model)
        check(self.positional != "sinusoidal" or self.d_model % 2 == 0, "d_model", "even for sinusoidal positions",
              self.d_model)


@checked
class TinyTransformer(nn.Module):
    """Encoder-only Transformer: tokens ``(B, T)`` -> logits ``(B, T, V)``, one per position.

    Enough for tasks whose output has the input's length (copy, reverse, sort). The last
    layer norm follows the pre-LN convention (none needed after post-LN blocks).
    """

    def __init__(self, config: TinyTransformerConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or TinyTransformerConfig()
        if cfg.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"config.positional must be 'learned' or 'sinusoidal', got {cfg.positional!r}")
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        pos_cls = LearnedPositionalEmbedding if cfg.positional == "learned" else SinusoidalPositionalEncoding
        self.pos = pos_cls(cfg.d_model, cfg.max_len)
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.d_model, cfg.num_heads, cfg.d_ff, dropout=cfg.dropout, norm_first=cfg.norm_first)
            for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm_first else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        nn.init.normal_(self.tok_emb.weight, std=0.02)  # same scale as the learned positions (GPT-2)

    @checked
    def forward_with_attention(self, idx: Int[Tensor, "B T"]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(B, T, V)`` and the attention weights of each layer, a list of ``(B, nh, T, T)``."""
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.ndim != 2:
            raise ValueError("idx must be an int64 tensor of token ids (B, T), got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} {tuple(getattr(idx, 'shape', ()))}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(f"idx must hold token ids in [0, {self.config.vocab_size}), "
                             f"got values in [{int(idx.min())}, {int(idx.max())}]")
        x = self.pos(self.tok_emb(idx))  # (B, T, C)
        maps = []
        for block in self.blocks:
            x, w = block(x)
            maps.append(w)
        return self.head(self.norm(x)), maps  # (B, T, V)

    @checked
    def forward(self, idx: Int[Tensor, "B T"]) -> torch.Tensor:
        return self.forward_with_attention(idx)[0]


@checked
@dataclass
class TrainResult:
    losses: list[float]  # training loss at every step
    token_accuracy: float  # on the held-out set
    sequence_accuracy: float  # fraction of held-out sequences entirely right


@torch.no_grad()
@checked
def token_accuracy(model: nn.Module, X: Int[Tensor, "N T"], y: Int[Tensor, "N T"]) -> tuple[float, float]:
    """``(token accuracy, whole-sequence accuracy)`` of ``model`` on ``X``, ``y`` ``(N, T)``."""
    was = model.training
    model.eval()
    pred = model(X).argmax(-1)  # (N, T)
    model.train(was)
    right = pred == y
    return right.float().mean().item(), right.all(dim=1).float().mean().item()


@checked
def train_sequence_model(model: nn.Module, X: Int[Tensor, "N T"], y: Int[Tensor, "N T"], X_test: Int[Tensor, "M T"],
                         y_test: Int[Tensor, "M T"], *, steps: PosInt = 1500, batch_size: PosInt = 64,
                         lr: PosFloat = 3e-3, seed: Seed = 0, progress: bool = True) -> TrainResult:
    """AdamW with linear warm-up (first 5 % of steps) then cosine decay; per-token cross-entropy.

    ``X``, ``y``: ``(N, T)`` token ids; batches are drawn with replacement from a seeded generator.
    ``progress`` draws a ``tqdm.auto`` bar over the steps.
    """
    if (V := getattr(getattr(model, "config", None), "vocab_size", None)) is not None:
        check_ids("y", y, V), check_ids("y_test", y_test, V)
    if X.shape != y.shape or X.ndim != 2:
        raise ValueError(f"X and y must both be (N, T), got {tuple(X.shape)} and {tuple(y.shape)}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    losses = []
    model.train()
    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), desc="training", leave=False, disable=not progress):
        i = torch.randint(0, X.shape[0], (batch_size,), generator=gen)
        logits = model(X[i])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y[i].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    tok, seq = token_accuracy(model, X_test, y_test)
    return TrainResult(losses, tok, seq)
