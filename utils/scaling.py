"""Scaling laws and compute: a tiny model family, power-law fits, FLOP and cost arithmetic.

Explained in chapter 6, "Scaling laws" and "Compute and cost". Three parts:

1. **A model family.** :class:`CharMLP` is a character-level language model in the style of
   Bengio et al. (2003): embed the last ``K`` characters, concatenate, apply ``num_layers``
   hidden layers, predict the next character. Its size is set by ``hidden_size`` and
   ``num_layers``, it trains in seconds on one CPU core, and :func:`train_char_lm` trains it on
   the book's own corpus (:mod:`utils.text_data`) and records the validation loss in nats per
   character. A Transformer would be the realistic choice; on a 2-core CPU this MLP reaches a
   lower loss in the same seconds, which is what a scaling experiment needs.
2. **Power laws.** :func:`fit_power_law` fits ``L(x) = c + a * x**(-alpha)`` by least squares on
   ``log L``, with ``c = 0`` (Kaplan et al., 2020) or a fitted irreducible loss ``c``
   (Hoffmann et al., 2022).
3. **Compute and cost.** Training a dense model with N parameters on D tokens costs about
   ``6 N D`` floating-point operations (forward ``2 N`` per token, backward ``4 N``), generating
   one token about ``2 N`` (Kaplan et al., 2020, section 2.1). :func:`estimate_cost` turns that
   into GPU-hours, days and money for assumed hardware; :data:`KNOWN_MODELS` holds published
   sizes with their sources.

Shapes: B batch, K context length (characters), E embedding width, H hidden width,
V vocabulary size, M number of validation windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Device, FloatIn, Int, NonNegInt, OneOf, PosFloat, PosInt, Seed, Tensor, check_ids, checked
from utils.text_data import get_batch

MFU = FloatIn(0.0, 1.0, lo_open=True, text="a fraction of peak in (0, 1]")  # model FLOPs utilisation

__all__ = [
    "CharMLPConfig", "CharMLP", "count_params", "lm_windows", "evaluate_char_lm", "LMRun", "train_char_lm",
    "PowerLawFit", "fit_power_law", "PUBLISHED_EXPONENTS",
    "training_flops", "inference_flops_per_token", "gpu_hours", "training_days", "chinchilla_optimal",
    "CostEstimate", "estimate_cost", "KnownModel", "KNOWN_MODELS", "matmul_flops_per_second",
]


# ---------------------------------------------------------------- 1. the model family

@checked
@dataclass
class CharMLPConfig:
    vocab_size: PosInt  # V: distinct characters of the corpus
    context_size: PosInt = 16  # K: characters the model sees before predicting the next one
    embed_dim: PosInt = 8  # E: width of each character vector (embedding parameters are not counted in N)
    hidden_size: PosInt = 64  # H: width of every hidden layer; the main size knob
    num_layers: PosInt = 2  # hidden layers (GELU after each); the depth knob


@checked
class CharMLP(nn.Module):
    """Next-character MLP: ids ``(B, K)`` -> embed ``(B, K, E)`` -> flatten ``(B, K*E)`` ->
    ``num_layers`` x (Linear, GELU) ``(B, H)`` -> Linear -> logits ``(B, V)``."""

    def __init__(self, config: CharMLPConfig) -> None:
        super().__init__()
        for name in ("vocab_size", "context_size", "embed_dim", "hidden_size", "num_layers"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"config.{name} must be a positive int, got {value!r}")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        layers, width = [], config.context_size * config.embed_dim
        for _ in range(config.num_layers):
            layers += [nn.Linear(width, config.hidden_size), nn.GELU()]
            width = config.hidden_size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.vocab_size)

    @checked(dims={"K": "config.context_size"})
    def forward(self, idx: Int[Tensor, "B K"]) -> torch.Tensor:
        cfg = self.config
        check_ids("idx", idx, cfg.vocab_size)
        if (not isinstance(idx, torch.Tensor) or idx.dtype != torch.long or idx.ndim != 2
                or idx.shape[1] != cfg.context_size):
            raise ValueError(f"idx must be int64 ids of shape (B, {cfg.context_size}), got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} {tuple(getattr(idx, 'shape', ()))}")
        x = self.embedding(idx).flatten(1)  # (B, K, E) -> (B, K*E)
        return self.head(self.body(x))  # (B, V)


@checked
def count_params(model: nn.Module, *, non_embedding: bool = False) -> int:
    """Number of parameters; ``non_embedding=True`` leaves out ``nn.Embedding`` tables, as
    Kaplan et al. (2020) do for N (an embedding lookup costs almost no FLOPs)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    return total


@checked
def lm_windows(data: Int[Tensor, "n"], context_size: PosInt) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of ``data`` (1-D ids, length n): inputs ``(M, K)`` and next ids ``(M,)``, M = n - K."""
    if not isinstance(data, torch.Tensor) or data.ndim != 1:
        raise ValueError(f"data must be a 1-D tensor of ids, got shape {tuple(getattr(data, 'shape', ()))}")
    if len(data) <= context_size:
        raise ValueError(f"data has {len(data)} ids, need more than context_size={context_size}")
    X = data.unfold(0, context_size, 1)[:-1]  # (M, K): windows starting at 0 .. n-K-1
    return X, data[context_size:]  # (M,)


@torch.no_grad()
@checked
def evaluate_char_lm(model: CharMLP, X: Int[Tensor, "M K"], y: Int[Tensor, "M"], *, batch_size: PosInt = 4096) -> float:
    """Mean cross-entropy in nats per character of ``model`` on windows ``X (M, K)``, targets ``y (M,)``."""
    check_ids("y", y, model.config.vocab_size)
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(y), batch_size):
        total += F.cross_entropy(model(X[i:i + batch_size]), y[i:i + batch_size], reduction="sum").item()
    model.train(was)
    return total / len(y)


@checked
@dataclass
class LMRun:
    """What :func:`train_char_lm` measured, one entry per evaluation."""

    n_params: NonNegInt  # non-embedding parameters (Kaplan's N)
    tokens: list[int] = field(default_factory=list)  # characters predicted in training so far
    train_loss: list[float] = field(default_factory=list)  # mean training loss since the last evaluation
    val_loss: list[float] = field(default_factory=list)  # nats per character on the whole validation split
    seconds: float = 0.0  # wall time of the run

    @property
    def best_val_loss(self) -> float:
        """Validation loss with early stopping (the minimum over evaluations)."""
        return min(self.val_loss)


@checked
def train_char_lm(model: CharMLP, train: Int[Tensor, "n"], val: Int[Tensor, "m"], *, steps: PosInt,
                  batch_size: PosInt = 128, lr: PosFloat = 1e-2, eval_every: PosInt = 100, seed: Seed = 0,
                  progress: bool = True) -> LMRun:
    """AdamW with cosine decay from ``lr`` to 0; batches of random windows from ``train`` (1-D ids).

    One step predicts ``batch_size`` characters, so a run sees ``steps * batch_size`` training
    tokens (D). The model is evaluated on every window of ``val`` every ``eval_every`` steps and
    at the end. Works on the model's device; the caller seeds the initialisation.
    ``progress`` draws a ``tqdm.auto`` bar over the steps.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    check_ids("train", train, model.config.vocab_size), check_ids("val", val, model.config.vocab_size)
    device = next(model.parameters()).device
    K = model.config.context_size
    X_val, y_val = (t.to(device) for t in lm_windows(val, K))  # (M, K), (M,)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    run, running, start = LMRun(count_params(model, non_embedding=True)), [], time.perf_counter()
    model.train()
    from tqdm.auto import tqdm

    for step in tqdm(range(1, steps + 1), desc="training", leave=False, disable=not progress):
        x, y = get_batch(train, K, batch_size, generator=gen, device=device)  # (B, K), (B, K)
        loss = F.cross_entropy(model(x), y[:, -1])  # the character after each window
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            run.tokens.append(step * batch_size)
            run.train_loss.append(sum(running) / len(running))
            run.val_loss.append(evaluate_char_lm(model, X_val, y_val))
            running = []
    run.seconds = time.perf_counter() - start
    return run


# ---------------------------------------------------------------- 2. power laws

# Published exponents, for comparison. Kaplan et al. (2020), eqs. (1.1)-(1.2): L(N) = (N_c/N)^alpha_N,
# L(D) = (D_c/D)^alpha_D. Hoffmann et al. (2022), approach 3: L(N, D) = E + A/N^alpha + B/D^beta.
PUBLISHED_EXPONENTS = {
    "Kaplan et al. 2020": {"N": 0.076, "D": 0.095},
    "Hoffmann et al. 2022": {"N": 0.34, "D": 0.28},
}


@checked
@dataclass(frozen=True)
class PowerLawFit:
    """``L(x) = c + a * x**(-alpha)``; ``r2`` is the coefficient of determination of ``log L``."""

    a: float
    alpha: float
    c: float
    r2: float

    @checked
    def predict(self, x: np.ndarray | float | Sequence[float]) -> np.ndarray:
        return self.c + self.a * np.asarray(x, dtype=float) ** (-self.alpha)


def _log_fit(logx: np.ndarray, logy: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(logx, logy, 1)
    return math.exp(intercept), -slope  # a, alpha


@checked
def fit_power_law(x: np.ndarray | Sequence[float] | torch.Tensor, y: np.ndarray | Sequence[float] | torch.Tensor, *,
                  irreducible: bool = False) -> PowerLawFit:
    """Least-squares fit of ``log y`` by ``log(c + a x^-alpha)``.

    Without ``irreducible`` (c = 0) this is a straight line on log-log axes. With it, ``c`` is
    searched on a grid in ``[0, min y)`` (for each c the line through ``log(y - c)`` gives a and
    alpha), then all three are refined with ``scipy.optimize.least_squares``.

    Args:
        x, y: 1-D arrays of equal length with positive values (at least 3 points, 4 with ``irreducible``).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    need = 4 if irreducible else 3
    if len(x) < need:
        raise ValueError(f"need at least {need} points to fit {'3' if irreducible else '2'} parameters, got {len(x)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("x and y must be finite and positive (a power law is fitted on logarithms)")
    logx, logy = np.log(x), np.log(y)

    def residuals(params: np.ndarray) -> np.ndarray:
        log_a, alpha, c = params
        return np.log(c + np.exp(log_a - alpha * logx)) - logy

    if not irreducible:
        a, alpha = _log_fit(logx, logy)
        c = 0.0
    else:
        from scipy.optimize import least_squares

        top = y.min() * (1 - 1e-6)
        best = None
        for c in np.linspace(0.0, top, 200):  # 1. coarse search over c
            a, alpha = _log_fit(logx, np.log(y - c))
            sse = float(np.sum(residuals(np.array([math.log(a), alpha, c])) ** 2))
            if best is None or sse < best[0]:
                best = (sse, math.log(a), alpha, c)
        sol = least_squares(residuals, np.array(best[1:]), bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, top]),
                            xtol=1e-14, ftol=1e-14, gtol=1e-14)  # 2. refine all three
        a, alpha, c = math.exp(sol.x[0]), float(sol.x[1]), float(sol.x[2])
    ss_res = float(np.sum(residuals(np.array([math.log(a), alpha, c])) ** 2))
    ss_tot = float(np.sum((logy - logy.mean()) ** 2))
    return PowerLawFit(a=a, alpha=alpha, c=c, r2=1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0)


# ---------------------------------------------------------------- 3. compute and cost

def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


@checked
def training_flops(n_params: PosFloat, n_tokens: PosFloat) -> float:
    """``6 N D``: forward ``2 N`` per token (one multiply and one add per weight), backward ``4 N``
    (gradients with respect to activations and to weights)."""
    return 6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens)


@checked
def inference_flops_per_token(n_params: PosFloat) -> float:
    """``2 N``: one forward pass per generated token (attention over the context is left out)."""
    return 2.0 * _positive("n_params", n_params)


def _mfu(mfu: float) -> float:
    mfu = _positive("mfu", mfu)
    if mfu > 1:
        raise ValueError(f"mfu is a fraction of peak and must be in (0, 1], got {mfu!r}")
    return mfu


@checked
def gpu_hours(flops: PosFloat, peak_flops: PosFloat, mfu: MFU) -> float:
    """Hours one GPU needs for ``flops`` at ``mfu`` (model FLOPs utilisation) times ``peak_flops`` per second."""
    return _positive("flops", flops) / (_positive("peak_flops", peak_flops) * _mfu(mfu)) / 3600.0


@checked
def training_days(flops: PosFloat, n_gpus: PosFloat, peak_flops: PosFloat, mfu: MFU) -> float:
    """Wall-clock days on ``n_gpus`` GPUs working in parallel at ``mfu`` of their peak."""
    return gpu_hours(flops, peak_flops, mfu) / _positive("n_gpus", n_gpus) / 24.0


@checked
def chinchilla_optimal(compute_flops: PosFloat, tokens_per_param: PosFloat = 20.0) -> tuple[float, float]:
    """Compute-optimal ``(N, D)`` for a budget C with ``D = r N`` (Hoffmann et al., 2022: r ~= 20):
    ``C = 6 N D = 6 r N^2``, so ``N = sqrt(C / (6 r))`` and ``D = r N``."""
    c, r = _positive("compute_flops", compute_flops), _positive("tokens_per_param", tokens_per_param)
    n = math.sqrt(c / (6.0 * r))
    return n, r * n


@checked
@dataclass(frozen=True)
class CostEstimate:
    train_flops: float  # 6 N D
    gpu_hours: float  # at the given peak and MFU
    days: float  # wall clock on n_gpus
    train_cost: float  # gpu_hours * price per GPU-hour
    inference_flops_per_token: float  # 2 N
    inference_cost_per_million_tokens: float  # same hardware, price and MFU (a compute-bound lower bound)


@checked
def estimate_cost(n_params: PosFloat, n_tokens: PosFloat, *, peak_flops: PosFloat, mfu: MFU, n_gpus: PosFloat,
                  price_per_gpu_hour: PosFloat) -> CostEstimate:
    """Training FLOPs, GPU-hours, days and cost, and the cost of generating one million tokens."""
    flops = training_flops(n_params, n_tokens)
    hours = gpu_hours(flops, peak_flops, mfu)
    price = _positive("price_per_gpu_hour", price_per_gpu_hour)
    per_token = inference_flops_per_token(n_params)
    return CostEstimate(flops, hours, training_days(flops, n_gpus, peak_flops, mfu), hours * price, per_token,
                        gpu_hours(per_token * 1e6, peak_flops, mfu) * price)


@checked
@dataclass(frozen=True)
class KnownModel:
    name: str
    n_params: PosFloat  # parameters
    n_tokens: PosFloat  # training tokens
    source: str  # where the two numbers are published
    reported_flops: PosFloat | None = None  # training compute stated by the authors, if any
    note: str = ""


KNOWN_MODELS = [
    KnownModel("GPT-3 175B", 175e9, 300e9, "Brown et al. 2020, section 2.2 and Table D.1", 3.14e23,
               "the paper reports 3.14e23 FLOPs (3,640 petaflop/s-days)"),
    KnownModel("Chinchilla 70B", 70e9, 1.4e12, "Hoffmann et al. 2022, Table 1"),
    KnownModel("LLaMA 65B", 65.2e9, 1.4e12, "Touvron et al. 2023, Table 2 and section 2.4", None,
               "about 380 tokens/s/GPU on 2048 A100-80GB GPUs, about 21 days"),
]


@checked
def matmul_flops_per_second(n: PosInt = 1024, reps: PosInt = 5, *, device: Device = "cpu",
                            dtype: OneOf(torch.float32, torch.float64, torch.float16, torch.bfloat16) = torch.float32,
                            ) -> float:
    """Measured throughput of an ``n x n`` matrix product (``2 n^3`` FLOPs), best of ``reps`` after a warm-up."""
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (n, reps)):
        raise ValueError(f"n and reps must be positive ints, got {n!r} and {reps!r}")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=dtype).to(device)
    b = torch.randn(n, n, generator=gen, dtype=dtype).to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best
