"""GPT benchmark: training throughput of our GPT (utils.gpt) vs transformers' GPT2LMHeadModel of
the same shape and weights, with the model FLOPs utilisation (MFU) of each against this machine's
fp32 matmul peak (measured here, and the 68 GFLOP/s quoted for 2 cores in DEVELOPERS.md).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_gpt.py [--validation]

``--validation`` runs only the cost of the input checks (ours with and without them, alternating).

Training FLOPs per token = 6 N + 12 L T C (Kaplan et al., 2020). Runs both models in one process,
alternating, and prints ratios, so that a busy machine slows both sides.
"""

from __future__ import annotations

import statistics
import time

import torch


def matmul_peak(n: int = 1024, repeat: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times)


def main() -> None:
    from utils.gpt import GPT, GPTConfig, lm_loss, to_hf_gpt2, train_flops_per_token

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {threads} thread(s); fp32 matmul peak measured {peak / 1e9:.1f} GFLOP/s "
          f"(quoted: 68 GFLOP/s on 2 cores)\n")
    B, T, steps = 16, 64, 15
    for cfg in (GPTConfig(vocab_size=351, block_size=T, n_layer=4, n_head=4, n_embd=128),
                GPTConfig(vocab_size=351, block_size=T, n_layer=6, n_head=6, n_embd=192)):
        ours = GPT(cfg)
        hf = to_hf_gpt2(ours).train()
        flops_tok = train_flops_per_token(ours, T)
        x = torch.randint(0, cfg.vocab_size, (B, T))
        opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-3)
        opt_hf = torch.optim.AdamW(hf.parameters(), lr=1e-3)

        def step_ours():
            loss = lm_loss(ours(x)[:, :-1], x[:, 1:])
            opt_ours.zero_grad(set_to_none=True)
            loss.backward()
            opt_ours.step()

        def step_hf():
            loss = hf(input_ids=x, labels=x).loss
            opt_hf.zero_grad(set_to_none=True)
            loss.backward()
            opt_hf.step()

        for fn in (step_ours, step_hf, step_ours, step_hf):  # warm-up
            fn()
        t_ours, t_hf = [], []
        for _ in range(steps):  # alternate, so that load changes hit both
            for fn, acc in ((step_ours, t_ours), (step_hf, t_hf)):
                start = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - start)
        tok_ours, tok_hf = B * T / statistics.median(t_ours), B * T / statistics.median(t_hf)
        print(f"GPT L={cfg.n_layer} C={cfg.n_embd} heads={cfg.n_head}, {ours.num_parameters():,} parameters, "
              f"batch {B}x{T}")
        for name, tok in (("ours (utils.gpt)", tok_ours), ("GPT2LMHeadModel", tok_hf)):
            mfu = tok * flops_tok / peak
            print(f"  {name:17s} {tok:8,.0f} tokens/s   MFU {mfu:5.1%} of measured peak, "
                  f"{tok * flops_tok / 68e9:5.1%} of 68 GFLOP/s")
        print(f"  ratio ours / transformers: {tok_ours / tok_hf:.2f}x\n")


class _HFAsGPT(torch.nn.Module):
    """``GPT2LMHeadModel`` behind our ``model(x, y) -> (logits, loss)`` interface (targets = inputs
    shifted by one, so transformers' own shift is used on the inputs)."""

    def __init__(self, hf) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x, y):
        out = self.hf(input_ids=x, labels=x)
        return out.logits, out.loss


def fixed_budget(seconds: float = 20.0) -> None:
    """Train ours and GPT2LMHeadModel from the same initial weights on the same batches of the
    book's corpus for the same wall-clock budget; report steps done and validation loss."""
    from utils.gpt import GPT, GPTConfig, estimate_loss, lm_loss, to_hf_gpt2
    from utils.text_data import char_lm_split, get_batch

    split = char_lm_split()
    cfg = GPTConfig(vocab_size=len(split.vocab), block_size=64, n_layer=4, n_head=4, n_embd=128)
    torch.manual_seed(0)
    ours = GPT(cfg)
    hf = to_hf_gpt2(ours).train()
    print(f"fixed budget: {seconds:.0f} s of training each, batch 16x64, AdamW lr 3e-3, same init and batches")
    for name, model, loss_of in (("ours (utils.gpt)", ours, lambda x, y: lm_loss(ours(x), y)),
                                 ("GPT2LMHeadModel", hf, lambda x, y: hf(input_ids=x, labels=x).loss)):
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
        gen = torch.Generator().manual_seed(0)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            x, y = get_batch(split.train, cfg.block_size, 16, generator=gen)
            loss = loss_of(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            steps += 1
        val = estimate_loss(ours if model is ours else _HFAsGPT(hf), split.val, cfg.block_size)
        print(f"  {name:17s} {steps:4d} steps, validation loss {val:.3f} nats/char")


def validation_overhead(rounds: int = 3, steps: int = 10) -> None:
    """Ours with and without the declared input checks (utils._validate), in one run.

    "Without" swaps in the undecorated ``GPT.forward`` and ``lm_loss`` (``__wrapped__``), so the
    decorator's own call costs nothing there either. Steps alternate between the two, ``rounds``
    times, and each side keeps its median; the machine's load hits both. The checks' own time per
    step is also timed alone (noise-free), which is what the ratio of medians estimates.
    """
    import utils.gpt as gpt_module
    from utils.gpt import GPT, GPTConfig

    B, T = 16, 64
    checked_forward, checked_loss = GPT.forward, gpt_module.lm_loss
    raw_forward, raw_loss = checked_forward.__wrapped__, checked_loss.__wrapped__
    print("input checks (utils._validate) on our GPT's training step, alternating with and without:")
    for cfg in (GPTConfig(vocab_size=351, block_size=T, n_layer=4, n_head=4, n_embd=128),
                GPTConfig(vocab_size=351, block_size=T, n_layer=6, n_head=6, n_embd=192)):
        torch.manual_seed(0)
        model = GPT(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, cfg.vocab_size, (B, T))

        def step(forward, loss_fn) -> float:
            GPT.forward = forward
            start = time.perf_counter()
            loss = loss_fn(model(x)[:, :-1], x[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return time.perf_counter() - start

        try:
            for _ in range(2):  # warm-up
                step(checked_forward, checked_loss), step(raw_forward, raw_loss)
            on, off = [], []
            for _ in range(rounds * steps):
                on.append(step(checked_forward, checked_loss))
                off.append(step(raw_forward, raw_loss))
        finally:
            GPT.forward = checked_forward
        logits = model(x)
        n = 2000
        start = time.perf_counter()
        for _ in range(n):  # the checks alone: what the two decorators and check_ids add per step
            checked_forward.__checker__().run((model, x), {})
            gpt_module.check_ids("idx", x, cfg.vocab_size)
            checked_loss.__checker__().run((logits[:, :-1], x[:, 1:]), {})
            gpt_module.check_ids("targets", x[:, 1:], cfg.vocab_size)
        checks = (time.perf_counter() - start) / n
        med_on, med_off = statistics.median(on), statistics.median(off)
        print(f"  GPT L={cfg.n_layer} C={cfg.n_embd}: step with checks {med_on * 1e3:7.2f} ms, without "
              f"{med_off * 1e3:7.2f} ms (medians of {len(on)}), ratio {med_on / med_off:.4f}; "
              f"checks alone {checks * 1e6:.1f} us = {checks / med_off:.3%} of a step")


if __name__ == "__main__":
    import sys

    if "--validation" in sys.argv:
        validation_overhead()
    else:
        main()
        validation_overhead()
        fixed_budget()
