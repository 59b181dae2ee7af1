"""Attribution methods: which input features does a classifier's score depend on?

Explained in chapter 6, "Interpretability". Four methods, from cheapest to dearest, each
returning a map with the input's shape (or the image's height and width):

* **saliency** (Simonyan, Vedaldi & Zisserman, 2014): the gradient of the class score with
  respect to the input, d f_c(x) / d x. Often shown as its absolute value.
* **gradient x input** (Shrikumar et al., 2016): x * d f_c / d x, a first-order estimate of
  each feature's contribution relative to a zero input.
* **integrated gradients** (Sundararajan, Taly & Yan, 2017): (x - x') times the gradient
  averaged along the straight path from a baseline x' to x. It satisfies *completeness*:
  the attributions sum to f_c(x) - f_c(x'), up to the error of the numerical integral.
* **occlusion** (Zeiler & Fergus, 2014): cover a window with a fill value and record how much
  the class score drops; each pixel gets the mean drop of the windows that cover it.

Plus the tools of the sanity check of Adebayo et al. (2018): :func:`randomize_weights` and
:func:`rank_correlation`. No plotting here; the chapter draws the maps.

Shapes: B batch, C channels, H/W height/width, K classes; "score" means the logit of the
target class (before the softmax, so that one class's score does not depend on the others').
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from utils._validate import Finite, Float, Integer, NonNegInt, PosInt, Real, Seed, Tensor, checked

Target = NonNegInt | Integer[Tensor, "B"]  # one class index for the whole batch, or one per sample

__all__ = [
    "class_score",
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "randomize_weights",
    "rank_correlation",
]


def _targets(target: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """``target`` as a ``(B,)`` int64 tensor (an int is repeated for every sample)."""
    if isinstance(target, bool):
        raise TypeError("target must be an int class index or a (B,) tensor of class indices, got bool")
    if isinstance(target, (int, np.integer)):
        target = torch.full((batch,), int(target), dtype=torch.long, device=device)
    if not isinstance(target, torch.Tensor) or target.shape != (batch,):
        raise ValueError(f"target must be an int or a tensor of shape ({batch},), "
                         f"got {tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__}")
    return target.to(device=device, dtype=torch.long)


@checked
def class_score(model: Callable, x: Float[Tensor, "B ..."], target: Target) -> torch.Tensor:
    """The target class's logit for each input: ``model(x)`` ``(B, K)`` gathered at ``target`` -> ``(B,)``."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a batch of inputs of shape (B, ...), got {tuple(getattr(x, 'shape', ()))}")
    logits = model(x)
    if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"model must return logits of shape (B, K) = ({x.shape[0]}, K), got {tuple(logits.shape)}")
    idx = _targets(target, x.shape[0], logits.device)  # (B,)
    if idx.min() < 0 or idx.max() >= logits.shape[1]:
        raise ValueError(f"target must hold class indices in [0, {logits.shape[1]}), got {idx.unique().tolist()}")
    return logits.gather(1, idx[:, None]).squeeze(1)  # (B,)


@checked
def saliency(model: Callable, x: Float[Tensor, "B ..."], target: Target) -> torch.Tensor:
    """Gradient of the target class score with respect to each input feature, shape of ``x``.

    Each sample's score depends only on its own input (no batch norm in training mode), so one
    backward pass of the summed scores gives every sample's gradient.
    """
    x = x.detach().clone().requires_grad_(True)
    score = class_score(model, x, target)  # (B,)
    (grad,) = torch.autograd.grad(score.sum(), x)
    return grad


@checked
def gradient_x_input(model: Callable, x: Float[Tensor, "B ..."], target: Target) -> torch.Tensor:
    """``x * saliency(model, x, target)``: zero wherever the input is zero."""
    return x.detach() * saliency(model, x, target)


@checked(mixed_dtypes=True)
def integrated_gradients(
    model: Callable,
    x: Float[Tensor, "B ..."],
    target: Target,
    baseline: Float[Tensor, "..."] | Finite = 0.0,
    *,
    steps: PosInt = 64,
    max_batch: PosInt = 4096,
) -> torch.Tensor:
    r"""Integrated gradients, ``(x - x') * mean_k grad f_c(x' + a_k (x - x'))``, shape of ``x``.

    The integral :math:`\int_0^1 \partial f_c(x' + a(x - x'))/\partial x \, da` is approximated by
    the midpoint rule, ``a_k = (k + 1/2) / steps``. Completeness, ``sum(attributions) ≈
    f_c(x) - f_c(x')``, holds up to the integration error, which shrinks as ``steps`` grows
    (check it: the gap is the first thing to report).

    Args:
        baseline: ``x'``, a float or a tensor broadcastable to ``x`` (e.g. all zeros: "no ink").
        steps: number of points on the path: B * steps inputs go forward and backward.
        max_batch: at most this many path points per pass (bounds memory; the result is the same).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    x = x.detach()
    baseline = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        baseline = baseline.expand_as(x)
    except RuntimeError:
        raise ValueError(f"baseline must broadcast to x's shape {tuple(x.shape)}, got {tuple(baseline.shape)}") from None
    B = x.shape[0]
    target = _targets(target, B, x.device)  # (B,)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps  # (steps,)
    chunk = max(1, max_batch // max(B, 1))  # alphas per pass
    grad_sum = torch.zeros_like(x)
    for a in alphas.split(chunk):
        S = len(a)
        path = baseline + a.view((S,) + (1,) * x.ndim) * (x - baseline)  # (S, B, ...): points on the straight line
        grads = saliency(model, path.reshape(S * B, *x.shape[1:]), target.repeat(S))  # (S * B, ...)
        grad_sum += grads.reshape(S, *x.shape).sum(dim=0)  # (B, ...)
    return (x - baseline) * grad_sum / steps


@checked
def occlusion(
    model: Callable,
    x: Float[Tensor, "B C H W"],
    target: Target,
    *,
    window: PosInt = 2,
    stride: PosInt = 1,
    fill: Finite = 0.0,
) -> torch.Tensor:
    """Occlusion sensitivity ``(B, H, W)``: mean drop of the target score when a window covering the pixel is filled.

    Every ``window`` x ``window`` square (all channels at once), at positions ``stride`` apart,
    is set to ``fill``; the drop ``f_c(x) - f_c(x_occluded)`` is added to each pixel of the
    square, and each pixel's sum is divided by the number of squares that covered it. Positive
    values: hiding the pixel lowers the score. All occluded copies go through the model in one
    batch of B * (number of windows) inputs.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(getattr(x, 'shape', ()))}")
    B, C, H, W = x.shape
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if window > min(H, W):
        raise ValueError(f"window must fit in the image ({H}x{W}), got {window}")
    x = x.detach()
    corners = [(i, j) for i in range(0, H - window + 1, stride) for j in range(0, W - window + 1, stride)]
    masks = torch.zeros(len(corners), 1, H, W, dtype=torch.bool, device=x.device)  # (P, 1, H, W)
    for p, (i, j) in enumerate(corners):
        masks[p, :, i:i + window, j:j + window] = True
    occluded = torch.where(masks[:, None], torch.as_tensor(fill, dtype=x.dtype, device=x.device),
                           x[None])  # (P, B, C, H, W)
    with torch.no_grad():
        target = _targets(target, B, x.device)  # (B,)
        base = class_score(model, x, target)  # (B,)
        scores = class_score(model, occluded.reshape(-1, C, H, W), target.repeat(len(corners)))  # (P * B,)
        drops = base[None] - scores.reshape(len(corners), B)  # (P, B)
    area = masks[:, 0].to(x.dtype)  # (P, H, W)
    total = torch.einsum("pb,phw->bhw", drops, area)  # (B, H, W)
    count = area.sum(dim=0)  # (H, W): windows covering each pixel
    return total / count.clamp(min=1)


@checked
def randomize_weights(model: nn.Module, *, top: NonNegInt | None = None, seed: Seed = 0) -> nn.Module:
    """A copy of ``model`` with fresh random weights in its last ``top`` layers (all if ``None``).

    "Layers" are the modules with a ``reset_parameters`` method and parameters of their own, in
    the order of ``model.modules()``; each is re-initialised with PyTorch's default scheme. With
    ``top = 1, 2, ...`` this is the *cascading randomisation* of Adebayo et al. (2018), from the
    output layer down. The global random state is left untouched; the original model too.
    """
    clone = copy.deepcopy(model)
    layers = [m for m in clone.modules()
              if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= len(layers)):
        raise ValueError(f"top must be an int in [0, {len(layers)}] (the model's layers) or None, got {top!r}")
    chosen = layers if top is None else layers[len(layers) - top:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in chosen:
            layer.reset_parameters()
    return clone


@checked(mixed_dtypes=True)
def rank_correlation(a: Real[Tensor, "B ..."], b: Real[Tensor, "B ..."], *, absolute: bool = True) -> torch.Tensor:
    """Spearman rank correlation between maps ``a`` and ``b`` of shape ``(B, ...)``, one value per sample -> ``(B,)``.

    Ties get their average rank (``scipy.stats.rankdata``); a constant map gives ``nan``.
    ``absolute=True`` compares ``|a|`` with ``|b|``, as Adebayo et al. do, because many methods
    flip sign between models without changing which pixels stand out.
    """
    from scipy.stats import rankdata

    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must be tensors of the same shape (B, ...), got "
                         f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}")
    a2 = a.detach().flatten(1).cpu().double().numpy()  # (B, D)
    b2 = b.detach().flatten(1).cpu().double().numpy()
    if absolute:
        a2, b2 = np.abs(a2), np.abs(b2)
    ra, rb = rankdata(a2, axis=1), rankdata(b2, axis=1)  # (B, D) average ranks
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return torch.from_numpy(rho)
