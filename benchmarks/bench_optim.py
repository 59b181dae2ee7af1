"""Optimiser benchmark: our from-scratch optimisers vs torch.optim (time per step on the same
model), and the optimiser race's compute time per widget update.

    .venv/bin/python benchmarks/bench_optim.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def median_time(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from utils import optim

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"100 optimiser steps on {n_params:,} parameters (gradients fixed; median of 5)")
    pairs = {
        "SGD+momentum": (optim.SGD(model.parameters(), 1e-3, momentum=0.9), torch.optim.SGD(model.parameters(), 1e-3, momentum=0.9)),
        "RMSprop": (optim.RMSprop(model.parameters(), 1e-3), torch.optim.RMSprop(model.parameters(), 1e-3)),
        "Adam": (optim.Adam(model.parameters(), 1e-3), torch.optim.Adam(model.parameters(), 1e-3, foreach=False)),
        "AdamW": (optim.AdamW(model.parameters(), 1e-3), torch.optim.AdamW(model.parameters(), 1e-3, foreach=False)),
    }
    for name, (ours, theirs) in pairs.items():
        t_ours = median_time(lambda: [ours.step() for _ in range(100)])
        t_torch = median_time(lambda: [theirs.step() for _ in range(100)])
        print(f"  {name:13s} ours {t_ours * 10:7.3f} ms/step   torch.optim {t_torch * 10:7.3f} ms/step   ratio {t_ours / t_torch:5.2f}x")

    print("\noptimiser race: one widget update (4 optimisers x 100 steps on a 2-D surface)")
    cfg = {n: {"lr": 0.02} for n in ("SGD", "momentum", "RMSprop", "Adam")}
    for surface in optim.SURFACES:
        t = median_time(lambda: optim.race(surface, cfg, steps=100, noise=0.5))
        print(f"  {surface:12s} {t * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
