"""The encoder-decoder Transformer: a decoder block with cross-attention, and a small model
that maps one digit string to another.

Explained in chapter 3, "The encoder-decoder Transformer". The encoder is a stack of the
(bidirectional) blocks of :mod:`utils.transformer`; each decoder block adds a third sublayer
between causal self-attention and the feed-forward network: **cross-attention**, whose queries
come from the decoder and whose keys and values are the encoder's output ("memory")
(Vaswani et al., 2017, section 3.2.3):

    pre-LN:  x = x + SelfAttn(LN1(x), causal);  x = x + CrossAttn(LN2(x), memory);  x = x + FFN(LN3(x))
    post-LN: x = LN1(x + SelfAttn(x));          x = LN2(x + CrossAttn(x, memory)); x = LN3(x + FFN(x))

:class:`DecoderBlock` carries the submodule names of ``torch.nn.TransformerDecoderLayer``
(``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1..3``), so PyTorch's
weights load with ``load_state_dict`` and the two agree (tested); ours returns the attention
weights. :class:`TransformerSeq2Seq` has the interface of :class:`utils.seq2seq.Seq2SeqGRU`, so
the same training loop and measurements apply.

Shapes: B batch, S source length, T target length, C model width, nh heads, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Dropout, Float, Int, PosInt, Tensor, check, check_ids, checked
from utils.attention import Mask, MultiHeadAttention, causal_mask
from utils.positional import LearnedPositionalEmbedding
from utils.transformer import TransformerBlock

__all__ = ["DecoderBlock", "Seq2SeqTransformerConfig", "TransformerSeq2Seq"]


@checked
class DecoderBlock(nn.Module):
    """One decoder block: causal self-attention, cross-attention to ``memory``, feed-forward
    network (``d_ff`` hidden units, ReLU), each with a residual connection and a LayerNorm
    (pre-LN if ``norm_first``). Counterpart: ``torch.nn.TransformerDecoderLayer``."""

    def __init__(self, d_model: PosInt, num_heads: PosInt, d_ff: PosInt, *, dropout: Dropout = 0.0,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.multihead_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)  # cross-attention
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))  # (B, T, C)

    @checked(dims={"C": "self_attn.d_model"})
    def forward(self, x: Float[Tensor, "B T C"], memory: Float[Tensor, "B S C"], memory_mask: Mask | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (B, T, C)``, ``memory (B, S, C)``, optional boolean ``memory_mask`` (True = may
        attend) broadcastable to ``(B, nh, T, S)`` -> ``(x, self weights (B, nh, T, T),
        cross weights (B, nh, T, S))``."""
        causal = causal_mask(x.shape[1], device=x.device)  # (T, T): token t sees tokens <= t
        if self.norm_first:
            a, w_self = self.self_attn(self.norm1(x), mask=causal)
            x = x + self.dropout(a)
            c, w_cross = self.multihead_attn(self.norm2(x), memory, memory, mask=memory_mask)
            x = x + self.dropout(c)
            x = x + self._ff(self.norm3(x))
        else:
            a, w_self = self.self_attn(x, mask=causal)
            x = self.norm1(x + self.dropout(a))
            c, w_cross = self.multihead_attn(x, memory, memory, mask=memory_mask)
            x = self.norm2(x + self.dropout(c))
            x = self.norm3(x + self._ff(x))
        return x, w_self, w_cross


@checked
@dataclass
class Seq2SeqTransformerConfig:
    vocab_size: PosInt = 10  # V: digits 0..V-1 (the decoder adds BOS = V)
    max_len: PosInt = 32  # longest source or target the positional tables cover
    d_model: PosInt = 64  # C
    num_heads: PosInt = 4  # nh: head size C / nh
    num_layers: PosInt = 2  # encoder blocks, and as many decoder blocks
    d_ff: PosInt = 128  # hidden width of every feed-forward network
    dropout: Dropout = 0.0  # synthetic tasks do not overfit at this size

    def __post_init__(self) -> None:
        check(self.d_model % self.num_heads == 0, "d_model", f"divisible by num_heads={self.num_heads}", self.d_model)


@checked
class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder Transformer (pre-LN) for digit strings.

    ``forward(src (B, S), tgt_in (B, T)) -> (logits (B, T, V), cross weights (B, T, S))``,
    the cross-attention weights of the last decoder block averaged over its heads (the same
    interface as :class:`utils.seq2seq.Seq2SeqGRU`; :meth:`forward_all` returns every layer's).
    """

    def __init__(self, config: Seq2SeqTransformerConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or Seq2SeqTransformerConfig()
        self.vocab_size, self.bos = cfg.vocab_size, cfg.vocab_size
        self.src_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.tgt_emb = nn.Embedding(cfg.vocab_size + 1, cfg.d_model)
        self.src_pos = LearnedPositionalEmbedding(cfg.d_model, cfg.max_len)
        self.tgt_pos = LearnedPositionalEmbedding(cfg.d_model, cfg.max_len)
        self.encoder = nn.ModuleList(TransformerBlock(cfg.d_model, cfg.num_heads, cfg.d_ff, dropout=cfg.dropout)
                                     for _ in range(cfg.num_layers))
        self.decoder = nn.ModuleList(DecoderBlock(cfg.d_model, cfg.num_heads, cfg.d_ff, dropout=cfg.dropout)
                                     for _ in range(cfg.num_layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        for emb in (self.src_emb, self.tgt_emb):
            nn.init.normal_(emb.weight, std=0.02)  # the scale of the learned positions (GPT-2)

    def _check(self, name: str, ids: torch.Tensor, vocab: int) -> None:
        check_ids(name, ids, vocab)
        check(ids.shape[1] <= self.config.max_len, name, f"at most max_len={self.config.max_len} tokens long",
              tuple(ids.shape))

    @checked
    def encode(self, src: Int[Tensor, "B S"]) -> torch.Tensor:
        """``src (B, S)`` -> memory ``(B, S, C)`` (bidirectional: every source token sees all)."""
        self._check("src", src, self.vocab_size)
        x = self.src_pos(self.src_emb(src))  # (B, S, C)
        for block in self.encoder:
            x, _ = block(x)
        return self.enc_norm(x)

    @checked
    def forward_all(self, src: Int[Tensor, "B S"], tgt_in: Int[Tensor, "B T"]
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(B, T, V)`` and the cross-attention weights of every decoder block, a list of
        ``(B, nh, T, S)``."""
        memory = self.encode(src)  # (B, S, C)
        self._check("tgt_in", tgt_in, self.vocab_size + 1)
        x = self.tgt_pos(self.tgt_emb(tgt_in))  # (B, T, C)
        cross = []
        for block in self.decoder:
            x, _, w = block(x, memory)
            cross.append(w)
        return self.head(self.dec_norm(x)), cross

    @checked
    def forward(self, src: Int[Tensor, "B S"], tgt_in: Int[Tensor, "B T"]) -> tuple[torch.Tensor, torch.Tensor]:
        logits, cross = self.forward_all(src, tgt_in)
        return logits, cross[-1].mean(dim=1)  # (B, T, V), (B, T, S)
