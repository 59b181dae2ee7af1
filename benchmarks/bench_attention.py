"""Benchmark: our attention and multi-head attention against PyTorch's, and the widget's update.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention.py

Prints medians of several repeats, side by side in one run (another busy process on the
machine can slow both sides; compare ratios, not absolute times):

1. ``utils.attention.scaled_dot_product_attention`` (explicit, returns the weights) vs
   ``torch.nn.functional.scaled_dot_product_attention`` (fused), forward and forward+backward;
2. ``utils.attention.MultiHeadAttention`` (explicit and ``fused=True``) vs
   ``torch.nn.MultiheadAttention`` with the same weights, forward+backward;
3. the attention explorer's compute per slider update (``attention_view``: pick, re-temper,
   mask) and the draw (``plot_attention_view``) on the tiny model and on all-MiniLM-L6-v2's shape,
   against the 50 ms budget.
"""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from _timing import timeit  # noqa: E402
from utils.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention  # noqa: E402
from utils.widgets.attention import AttentionMaps, attention_view, plot_attention_view  # noqa: E402


def median_ms(fn, repeats: int = 7, inner: int = 5) -> float:
    return timeit(fn, repeat=repeats, number=inner) * 1e3


def row(name: str, ours: float, theirs: float) -> None:
    print(f"{name:<46} ours {ours:8.3f} ms | torch {theirs:8.3f} ms | ratio ours/torch {ours / theirs:5.2f}")


def bench_sdpa() -> None:
    print(f"\n1. scaled dot-product attention, threads={torch.get_num_threads()}")
    for B, nh, T, hs in ((8, 4, 64, 32), (8, 8, 256, 32)):
        q, k, v = (torch.randn(B, nh, T, hs) for _ in range(3))
        mask = causal_mask(T)
        row(f"forward (B={B}, nh={nh}, T={T}, hs={hs}), causal",
            median_ms(lambda: scaled_dot_product_attention(q, k, v, mask)),
            median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)))
        qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
        row("  forward + backward",
            median_ms(lambda: scaled_dot_product_attention(qg, kg, vg, mask)[0].sum().backward()),
            median_ms(lambda: F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).sum().backward()))


def bench_mha() -> None:
    print("\n2. multi-head attention, forward + backward, causal")
    for B, T, C, nh in ((8, 64, 128, 4), (8, 128, 256, 8)):
        ref = nn.MultiheadAttention(C, nh, batch_first=True)
        ours = MultiHeadAttention(C, nh).load_from_torch(ref)
        x = torch.randn(B, T, C, requires_grad=True)
        mask = causal_mask(T)
        blocked = ~mask
        t_ref = median_ms(lambda: ref(x, x, x, attn_mask=blocked, need_weights=False)[0].sum().backward())
        row(f"explicit (B={B}, T={T}, C={C}, nh={nh})", median_ms(lambda: ours(x, mask=mask)[0].sum().backward()), t_ref)
        ours.fused = True
        row("  fused=True", median_ms(lambda: ours(x, mask=mask)[0].sum().backward()), t_ref)
        ours.fused = False


def bench_widget() -> None:
    print("\n3. attention explorer, one slider update (budget 50 ms)")
    for name, (L, nh, T) in (("tiny model (2 layers, 4 heads, T=10)", (2, 4, 10)),
                             ("MiniLM shape (6 layers, 12 heads, T=32)", (6, 12, 32))):
        weights = torch.softmax(torch.randn(L, nh, T, T), dim=-1)
        maps = AttentionMaps([f"t{i}" for i in range(T)], weights, name)
        compute = median_ms(lambda: attention_view(maps, layer=L - 1, head=1, query=3, temperature=0.7, causal=True))
        mean_heads = median_ms(lambda: attention_view(maps, layer=L - 1, head=None, query=3, temperature=2.0))
        view = attention_view(maps, layer=0, head=0, query=3)

        def draw():
            fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
            plot_attention_view(view, ax=axes)
            fig.canvas.draw()
            plt.close(fig)
        drawing = median_ms(draw, repeats=3, inner=2)
        print(f"{name:<46} compute {compute:6.3f} ms (mean of heads {mean_heads:6.3f} ms) | "
              f"draw {drawing:6.1f} ms | compute within budget: {max(compute, mean_heads) < 50}")


if __name__ == "__main__":
    torch.manual_seed(0)
    bench_sdpa()
    bench_mha()
    bench_widget()
