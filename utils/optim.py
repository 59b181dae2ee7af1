"""Optimisers and learning-rate schedules from scratch, and the optimiser race.

Explained in chapter 3, "Optimisers, schedules and batch normalisation". Each optimiser follows
the update rule of its ``torch.optim`` counterpart exactly (tested step for step): ours exist to
be read. The race (:func:`race`) runs them on 2-D loss surfaces for the optimiser widget.

Update rules (g the gradient, t the step, all operations element-wise):

- SGD with momentum mu:   v = mu v + g;  p = p - lr v                       (torch.optim.SGD)
- RMSprop:                s = a s + (1 - a) g^2;  p = p - lr g / (sqrt(s) + eps)   (torch.optim.RMSprop)
- Adam:                   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
                          p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (torch.optim.Adam)
- L2 regularisation adds wd * p to g; AdamW instead shrinks p by lr * wd before the step
  (decoupled weight decay, Loshchilov & Hutter 2019; torch.optim.AdamW).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from utils._validate import Finite, FloatIn, IntIn, NonNegFloat, NonNegInt, PosFloat, PosInt, Seed, check, checked

Beta = FloatIn(0.0, 1.0, hi_open=True, text="a number in [0, 1)")  # momentum and moving-average factors

__all__ = [
    "SGD", "RMSprop", "Adam", "AdamW", "step_lr", "cosine_lr", "warmup_cosine_lr",
    "SURFACES", "Surface", "RaceResult", "race",
]


def _check_lr(lr: float, name: str = "lr") -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"{name} must be a positive number, got {lr!r}")
    return float(lr)


def _check_beta(name: str, beta: float) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
    return float(beta)


class _Optimizer:
    """Minimal base: holds a list of parameters and per-parameter state."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.params = [p for p in params]
        if not self.params or not all(isinstance(p, torch.Tensor) for p in self.params):
            raise TypeError("params must be a non-empty iterable of tensors (e.g. model.parameters())")
        self.lr = _check_lr(lr)
        self.state: list[dict] = [{} for _ in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, p.grad, state)

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict) -> None:
        raise NotImplementedError


@checked
class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay (``torch.optim.SGD``)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: PosFloat, momentum: Beta = 0.0,
                 weight_decay: NonNegFloat = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_beta("momentum", momentum)
        self.weight_decay = float(weight_decay)

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p  # L2: the gradient of (wd / 2) * ||p||^2
        if self.momentum:
            v = state.get("v")
            v = g.clone() if v is None else v.mul_(self.momentum).add_(g)  # v = mu v + g
            state["v"] = v
            g = v
        p.add_(g, alpha=-self.lr)


@checked
class RMSprop(_Optimizer):
    """Divide the step by a running root-mean-square of the gradient (``torch.optim.RMSprop``)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: PosFloat = 1e-2, alpha: Beta = 0.99,
                 eps: PosFloat = 1e-8) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps = _check_beta("alpha", alpha), float(eps)

    def _update(self, p, g, state):
        s = state.setdefault("s", torch.zeros_like(p))
        s.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)  # s = a s + (1 - a) g^2
        p.addcdiv_(g, s.sqrt().add_(self.eps), value=-self.lr)


@checked
class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; ``weight_decay`` is L2 added to the gradient,
    as in ``torch.optim.Adam``. Use :class:`AdamW` for decoupled weight decay."""

    decoupled = False

    def __init__(self, params: Iterable[torch.Tensor], lr: PosFloat = 1e-3, betas: tuple[Beta, Beta] = (0.9, 0.999),
                 eps: PosFloat = 1e-8, weight_decay: NonNegFloat = 0.0) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.b1, self.b2 = _check_beta("betas[0]", betas[0]), _check_beta("betas[1]", betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)

    def _update(self, p, g, state):
        if self.weight_decay and self.decoupled:
            p.mul_(1 - self.lr * self.weight_decay)  # AdamW: shrink the weights directly
        elif self.weight_decay:
            g = g + self.weight_decay * p  # Adam + L2: the decay passes through the adaptive scaling
        m = state.setdefault("m", torch.zeros_like(p))
        v = state.setdefault("v", torch.zeros_like(p))
        m.mul_(self.b1).add_(g, alpha=1 - self.b1)  # first moment
        v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)  # second moment
        m_hat = m / (1 - self.b1 ** self.t)  # bias correction: m and v start at 0
        v_hat = v / (1 - self.b2 ** self.t)
        p.addcdiv_(m_hat, v_hat.sqrt().add_(self.eps), value=-self.lr)


@checked
class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``; default weight_decay 0.01 as in torch)."""

    decoupled = True

    def __init__(self, params: Iterable[torch.Tensor], lr: PosFloat = 1e-3, betas: tuple[Beta, Beta] = (0.9, 0.999),
                 eps: PosFloat = 1e-8, weight_decay: NonNegFloat = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


# ----------------------------------------------------------------------------------------
# Learning-rate schedules (pure functions of the step, 0-based)
# ----------------------------------------------------------------------------------------

@checked
def step_lr(step: NonNegInt, lr0: PosFloat, step_size: PosInt, gamma: PosFloat = 0.1) -> float:
    """lr0 * gamma^(step // step_size) (``torch.optim.lr_scheduler.StepLR``)."""
    return _check_lr(lr0, "lr0") * gamma ** (step // step_size)


@checked
def cosine_lr(step: NonNegInt, total: PosInt, lr0: PosFloat, lr_min: NonNegFloat = 0.0) -> float:
    """lr_min + (lr0 - lr_min) (1 + cos(pi step / total)) / 2 (``CosineAnnealingLR`` with T_max=total)."""
    return lr_min + (_check_lr(lr0, "lr0") - lr_min) * (1 + math.cos(math.pi * min(step, total) / total)) / 2


@checked
def warmup_cosine_lr(step: NonNegInt, warmup: NonNegInt, total: PosInt, lr0: PosFloat,
                     lr_min: NonNegFloat = 0.0) -> float:
    """Linear warm-up from lr0/warmup to lr0 over ``warmup`` steps, then cosine decay to lr_min at ``total``
    (the schedule of most Transformer training runs)."""
    if step < warmup:
        return _check_lr(lr0, "lr0") * (step + 1) / warmup
    return cosine_lr(step - warmup, max(total - warmup, 1), lr0, lr_min)


# ----------------------------------------------------------------------------------------
# The optimiser race on 2-D loss surfaces (compute of the widget)
# ----------------------------------------------------------------------------------------

@checked
@dataclass(frozen=True)
class Surface:
    """A 2-D loss surface: ``f(x, y)`` (works on arrays and tensors), a start point, a plot window."""

    name: str
    f: Callable
    grad: Callable  # analytic gradient (x, y) -> (df/dx, df/dy); autograd per step would dominate the widget's time
    start: tuple[Finite, Finite]
    xlim: tuple[Finite, Finite]
    ylim: tuple[Finite, Finite]
    minimum: tuple[Finite, Finite] | None


def _bowl(x, y):
    return 0.5 * x ** 2 + 5.0 * y ** 2  # elongated: curvature 1 along x, 10 along y


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def _saddle(x, y):
    return 0.5 * x ** 2 - 0.5 * y ** 2 + 0.02 * y ** 4  # saddle at the origin; minima (0, +-sqrt(12.5)), loss -3.125


def _noisy(x, y):
    lib = torch if isinstance(x, torch.Tensor) else np
    return 0.5 * x ** 2 + 5.0 * y ** 2 + 0.5 * lib.sin(3 * x) * lib.sin(3 * y)


SURFACES = {
    "convex bowl": Surface("convex bowl", _bowl, lambda x, y: (x, 10.0 * y), (-4.0, 1.5), (-5, 5), (-2, 2), (0.0, 0.0)),
    "Rosenbrock": Surface("Rosenbrock", _rosenbrock,
                          lambda x, y: (-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)),
                          (-1.5, 2.0), (-2, 2), (-1, 3), (1.0, 1.0)),
    "saddle": Surface("saddle", _saddle, lambda x, y: (x, -y + 0.08 * y ** 3), (-4.0, 0.01), (-5, 5), (-6, 6), None),
    "noisy bowl": Surface("noisy bowl", _noisy,
                          lambda x, y: (x + 1.5 * math.cos(3 * x) * math.sin(3 * y), 10.0 * y + 1.5 * math.sin(3 * x) * math.cos(3 * y)),
                          (-4.0, 1.5), (-5, 5), (-2, 2), None),
}

_MAKERS = {"SGD": lambda p, c: SGD([p], c["lr"]),
           "momentum": lambda p, c: SGD([p], c["lr"], momentum=c.get("momentum", 0.9)),
           "RMSprop": lambda p, c: RMSprop([p], c["lr"], alpha=c.get("alpha", 0.99)),
           "Adam": lambda p, c: Adam([p], c["lr"], betas=c.get("betas", (0.9, 0.999)))}


@checked
@dataclass(frozen=True)
class RaceResult:
    """Trajectories ``(steps + 1, 2)`` and losses ``(steps + 1,)`` per optimiser name."""

    surface: Surface
    paths: dict[str, np.ndarray]
    losses: dict[str, np.ndarray]


@checked
def race(surface: str | Surface, configs: dict[str, dict], *, steps: IntIn(1, 5000) = 100,
         start: tuple[Finite, Finite] | None = None, noise: NonNegFloat = 0.0, seed: Seed = 0) -> RaceResult:
    """Run each optimiser in ``configs`` (name in SGD, momentum, RMSprop, Adam -> dict with ``lr`` and
    optional ``momentum``/``alpha``/``betas``) from the same start for ``steps`` steps.

    ``noise`` adds Gaussian noise of that standard deviation to every gradient, imitating the
    noise of mini-batch gradients. Diverging runs stop where the loss stops being finite.
    """
    surf = SURFACES.get(surface) if isinstance(surface, str) else surface
    if not isinstance(surf, Surface):
        raise ValueError(f"surface must be one of {sorted(SURFACES)}, got {surface!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 5000:
        raise ValueError(f"steps must be an int in [1, 5000], got {steps!r}")
    unknown = set(configs) - set(_MAKERS)
    if unknown:
        raise ValueError(f"configs has unknown optimiser(s) {sorted(unknown)}; choose from {sorted(_MAKERS)}")
    check(all("lr" in c for c in configs.values()), "configs", "a dict name -> {'lr': ..., ...}", configs)
    paths, losses = {}, {}
    for name, cfg in configs.items():
        rng = np.random.default_rng(seed)  # the same noise for every optimiser
        p = torch.tensor(start if start is not None else surf.start, dtype=torch.float64)
        opt = _MAKERS[name](p, cfg)
        x, y = p.tolist()
        path, loss = [(x, y)], [float(surf.f(x, y))]
        for _ in range(steps):
            gx, gy = surf.grad(x, y)
            if noise:
                gx, gy = gx + noise * rng.standard_normal(), gy + noise * rng.standard_normal()
            p.grad = torch.tensor([gx, gy], dtype=torch.float64)
            opt.step()
            x, y = p.tolist()
            current = float(surf.f(x, y))
            if not math.isfinite(current) or abs(current) > 1e12:
                break
            path.append((x, y))
            loss.append(current)
        paths[name], losses[name] = np.array(path), np.array(loss)
    return RaceResult(surf, paths, losses)
