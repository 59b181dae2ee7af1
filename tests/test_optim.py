import math

import pytest
import torch

from utils import optim


def _problem(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    X, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    return model, X, y


PAIRS = [
    (lambda p: optim.SGD(p, 0.1), lambda p: torch.optim.SGD(p, 0.1)),
    (lambda p: optim.SGD(p, 0.05, momentum=0.9, weight_decay=1e-2), lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, weight_decay=1e-2)),
    (lambda p: optim.RMSprop(p, 0.01, alpha=0.9), lambda p: torch.optim.RMSprop(p, 0.01, alpha=0.9)),
    (lambda p: optim.Adam(p, 0.01, betas=(0.8, 0.99), weight_decay=0.1), lambda p: torch.optim.Adam(p, 0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (lambda p: optim.AdamW(p, 0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, 0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_matches_torch_optim_step_for_step(ours, theirs):
    m1, X, y = _problem()
    m2, _, _ = _problem()
    o1, o2 = ours(m1.parameters()), theirs(m2.parameters())
    for _ in range(20):
        for m, o in ((m1, o1), (m2, o2)):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(X), y).backward()
            o.step()
        for a, b in zip(m1.parameters(), m2.parameters()):
            torch.testing.assert_close(a, b)


def test_schedules_match_torch_schedulers():
    p = [torch.zeros(1, requires_grad=True)]
    for ours, sched in ((lambda s: optim.step_lr(s, 0.1, 5, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 5, 0.5)),
                        (lambda s: optim.cosine_lr(s, 20, 0.1), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20))):
        opt = torch.optim.SGD(p, lr=0.1)
        s = sched(opt)
        for step in range(20):
            assert math.isclose(opt.param_groups[0]["lr"], ours(step), rel_tol=1e-9, abs_tol=1e-12)
            opt.step()
            s.step()
    lrs = [optim.warmup_cosine_lr(s, 10, 100, 1.0) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0 and lrs[10] == 1.0 and lrs[-1] < 0.01
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10]))


@pytest.mark.parametrize("call, word", [
    (lambda p: optim.SGD(p, lr=0), "lr"), (lambda p: optim.SGD(p, lr=-1e-3), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=1.0), "momentum"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas\[1\]"), (lambda p: optim.Adam(p, betas=(-0.1, 0.9)), r"betas\[0\]"),
    (lambda p: optim.Adam(p, betas=(0.9,)), "pair"), (lambda p: optim.RMSprop(p, alpha=1.5), "alpha"),
])
def test_bad_hyperparameters_are_named(call, word):
    with pytest.raises(ValueError, match=word):
        call([torch.zeros(2, requires_grad=True)])
    with pytest.raises(TypeError, match="params"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="betas must be a pair"):
        optim.Adam([torch.zeros(2, requires_grad=True)], betas=0.9)


def test_race_on_every_surface():
    cfg = {"SGD": {"lr": 0.05}, "momentum": {"lr": 0.05, "momentum": 0.9}, "RMSprop": {"lr": 0.05}, "Adam": {"lr": 0.1}}
    for name in optim.SURFACES:
        res = optim.race(name, cfg, steps=50, noise=0.1)
        for opt_name in cfg:
            assert res.paths[opt_name].shape[1] == 2 and len(res.paths[opt_name]) == len(res.losses[opt_name])
    res = optim.race("convex bowl", {"momentum": {"lr": 0.02, "momentum": 0.9}, "SGD": {"lr": 0.02}}, steps=60)
    assert res.losses["momentum"][-1] < res.losses["SGD"][-1] < res.losses["SGD"][0]
    diverged = optim.race("convex bowl", {"SGD": {"lr": 0.5}}, steps=300)  # lr > 2 / curvature 10 diverges
    assert len(diverged.losses["SGD"]) < 301
    with pytest.raises(ValueError, match="surface"):
        optim.race("volcano", cfg)
    with pytest.raises(ValueError, match="unknown optimiser"):
        optim.race("saddle", {"Newton": {"lr": 1}})


def test_analytic_gradients_of_the_surfaces_match_autograd():
    for surf in optim.SURFACES.values():
        for x0, y0 in ((-1.3, 0.7), (0.4, -1.9), (2.0, 2.5)):
            p = torch.tensor([x0, y0], dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(surf.f(p[0], p[1]), p)
            assert torch.allclose(g, torch.tensor(surf.grad(x0, y0), dtype=torch.float64)), surf.name
