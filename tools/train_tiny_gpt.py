"""Pretrain the book's tiny character-level GPT on its own corpus and ship it.

    OMP_NUM_THREADS=1 python tools/train_tiny_gpt.py   # about 10-20 minutes on one CPU core

Writes ``utils/resources/tiny_gpt/`` (model.safetensors, config.json with the training facts,
vocab.json). The chapter "Pretraining a tiny GPT" trains the same model for a minute to show the
loss falling, then loads this checkpoint for generation and the sampling widget. Seeded; the
result depends on the CPU's floating-point kernels only in the last digits.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.gpt import GPT, GPTConfig, estimate_loss, save_checkpoint  # noqa: E402
from utils.text_data import char_lm_split, get_batch  # noqa: E402

CONFIG = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0)
STEPS, BATCH, LR, WARMUP = 2000, 16, 3e-3, 100


def lr_at(step: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main() -> None:
    torch.manual_seed(0)
    split = char_lm_split()
    cfg = GPTConfig(vocab_size=len(split.vocab), **CONFIG)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x, y = get_batch(split.train, cfg.block_size, BATCH, generator=gen)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: train {loss.item():.3f}, val {estimate_loss(model, split.val, cfg.block_size, batches=20):.3f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    final_val = estimate_loss(model, split.val, cfg.block_size, batches=20)
    meta = {"corpus": "utils/resources/corpus/book_prose.txt (first 90% train, last 10% validation)",
            "steps": STEPS, "batch_size": BATCH, "tokens_seen": STEPS * BATCH * cfg.block_size, "peak_lr": LR,
            "optimizer": "AdamW(betas=(0.9, 0.95), weight_decay=0.1), warm-up 100 steps, cosine to 10%",
            "val_loss_nats_per_char": round(final_val, 4), "train_seconds": round(seconds),
            "threads": torch.get_num_threads(), "parameters": model.num_parameters(), "seed": 0}
    save_checkpoint(model, ROOT / "utils" / "resources" / "tiny_gpt", chars=split.vocab.chars, meta=meta)
    print(meta)


if __name__ == "__main__":
    main()
