"""Convolution benchmark: our from-scratch conv2d (loops, unfold) vs torch's F.conv2d, the
convolution explorer's update time, and the digits CNN vs scikit-learn's SVC.

    .venv/bin/python benchmarks/bench_conv.py

Runs everything in one process and prints ratios, so that a busy machine slows both sides.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from _timing import timeit


def main() -> None:
    from utils.conv import DigitsCNN, conv2d_loops, conv2d_unfold
    from utils.conv_explorer import KERNELS, conv_step
    from utils.data import digits_loaders, load_digits_split
    from utils.training import fit
    from utils.widgets.conv import PATTERNS

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    print("conv2d forward, x (8, 16, 32, 32), w (32, 16, 3, 3), padding 1 (median of 5)")
    x, w, b = torch.randn(8, 16, 32, 32), torch.randn(32, 16, 3, 3), torch.randn(32)
    t_torch = timeit(lambda: F.conv2d(x, w, b, padding=1), number=20)
    t_unfold = timeit(lambda: conv2d_unfold(x, w, b, padding=1), number=20)
    t_loops = timeit(lambda: conv2d_loops(x, w, b, padding=1), repeat=3)
    for name, t in (("F.conv2d", t_torch), ("conv2d_unfold", t_unfold), ("conv2d_loops", t_loops)):
        print(f"  {name:14s} {t * 1e3:9.3f} ms   ratio to torch {t / t_torch:8.1f}x")

    print("\nconvolution explorer: one update of the compute (conv_step on an 8x8 input)")
    img = PATTERNS["drawn cross"]
    t_step = timeit(lambda: conv_step(img, KERNELS["sharpen"], stride=1, padding=1, position=30), repeat=7, number=50)
    print(f"  conv_step      {t_step * 1e3:9.3f} ms  (budget 50 ms)")

    print("\ndigits, fixed split (450 test images): CNN vs SVC")
    from sklearn.svm import SVC

    Xtr, ytr, Xte, yte = (t.numpy() for t in load_digits_split().flat())
    start = time.perf_counter()
    svc_acc = SVC(gamma="scale").fit(Xtr, ytr).score(Xte, yte)
    t_svc = time.perf_counter() - start
    accs, times = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        model = DigitsCNN(channels=(32, 64), dropout=0.3)
        train, test = digits_loaders(batch_size=32, seed=0)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 30)
        start = time.perf_counter()
        hist = fit(model, train, test, epochs=30, optimizer=opt, scheduler=sched, progress=False)
        times.append(time.perf_counter() - start)
        accs.append(hist.val_acc[-1])
    print(f"  SVC (RBF)         accuracy {svc_acc:.1%}   train time {t_svc:6.2f} s")
    print(f"  DigitsCNN (3 seeds) accuracy {min(accs):.1%}-{max(accs):.1%}   train time {statistics.median(times):6.2f} s "
          f"(ratio to SVC {statistics.median(times) / t_svc:.0f}x)")


if __name__ == "__main__":
    main()
