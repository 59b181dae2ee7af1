"""Making deep networks trainable: initialisation, signal propagation through depth, residual
MLPs, and the memory that activations hold for the backward pass.

Explained in chapter 3, "Initialisation, residual connections and normalisation".

**The variance argument.** For a linear layer ``z = W a`` with ``n`` inputs and i.i.d. zero-mean
weights of variance ``Var(w)``, independent of the inputs, ``E[z_i^2] = n Var(w) E[a_j^2]``. After a
ReLU, ``E[a^2] = E[z^2] / 2`` (half of a symmetric distribution is zeroed), so every layer
multiplies the mean square of the pre-activations by ``n Var(w) / 2``, and the backward pass
multiplies the mean square of the gradients by ``n_out Var(w) / 2``:

* PyTorch's default ``nn.Linear`` weights are ``U(-1/sqrt(n), 1/sqrt(n))``, ``Var(w) = 1/(3n)``:
  the factor is 1/6, and the root mean square shrinks by ``sqrt(6)`` per layer;
* Xavier/Glorot (2010) ``Var(w) = 2/(n_in + n_out)`` (``= 1/n`` for square layers), designed for
  tanh and linear units: the factor is 1/2 with ReLU;
* He/Kaiming (2015) ``Var(w) = 2/n``: the factor is 1, the scale is kept in both directions.

Shapes: B batch, C width (features), L depth (layers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Float, NonNegInt, OneOf, PosInt, Seed, Tensor, checked

__all__ = ["INIT_SCHEMES", "init_linear_", "predicted_rms_factor", "SignalProfile", "signal_profile",
           "ResidualBlock", "deep_mlp", "SavedActivations", "saved_activations"]

INIT_SCHEMES = ("default", "xavier", "he")
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "tanh": torch.tanh}
Scheme = OneOf(*INIT_SCHEMES)
Activation = OneOf(*_ACTIVATIONS)


@checked
def init_linear_(layer: Annotated[nn.Linear, "an nn.Linear layer"], scheme: Scheme) -> nn.Linear:
    """Initialise ``layer`` in place: ``"default"`` keeps PyTorch's weights, ``"xavier"`` uses
    ``xavier_normal_`` and ``"he"`` ``kaiming_normal_`` (fan-in, ReLU gain), both with zero bias."""
    if scheme == "xavier":
        nn.init.xavier_normal_(layer.weight)
    elif scheme == "he":
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    if scheme != "default" and layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


@checked
def predicted_rms_factor(scheme: Scheme, activation: Activation = "relu") -> float:
    """Per-layer factor of the root mean square of the pre-activations predicted by the variance
    argument for square layers: ``sqrt(n Var(w) g)`` with ``g = 1/2`` for ReLU and ``g = 1`` for tanh
    (its slope at 0, valid while the units are not saturated)."""
    n_var = {"default": 1 / 3, "xavier": 1.0, "he": 2.0}
    return (n_var[scheme] * (0.5 if activation == "relu" else 1.0)) ** 0.5


@checked
@dataclass
class SignalProfile:
    """Root mean square, layer by layer (index 0 = first layer), of the pre-activations
    ``z_l`` in the forward pass and of the gradients ``dLoss/dz_l`` in the backward pass."""

    forward_rms: list[float]
    backward_rms: list[float]


@checked
def signal_profile(scheme: Scheme, *, activation: Activation = "relu", depth: PosInt = 20, width: PosInt = 256,
                   batch_size: PosInt = 512, zero_bias: bool = True, seed: Seed = 0) -> SignalProfile:
    """Push a standard-normal batch ``(B, C)`` through ``depth`` square linear layers (``C -> C``)
    with ``activation``, initialised with ``scheme``; back-propagate a loss ``sum(out * g)`` with
    ``g`` standard normal; return the RMS of every pre-activation and of its gradient.

    ``zero_bias`` sets the biases to 0 for every scheme, so that only the weights' variance acts
    (PyTorch's default biases would add a constant of variance ``1/(3C)`` per layer)."""
    act = _ACTIVATIONS[activation]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seed the layers' initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        layers = [init_linear_(nn.Linear(width, width), scheme) for _ in range(depth)]
    if zero_bias:
        for layer in layers:
            nn.init.zeros_(layer.bias)
    a = torch.randn(batch_size, width, generator=gen)  # (B, C)
    zs = []
    for layer in layers:
        z = layer(a)  # (B, C) pre-activation
        z.retain_grad()
        zs.append(z)
        a = act(z)
    (a * torch.randn(a.shape, generator=gen)).sum().backward()
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    return SignalProfile([rms(z) for z in zs], [rms(z.grad) for z in zs])


@checked
class ResidualBlock(nn.Module):
    """``x + W_2 relu(W_1 x + b_1) + b_2``: a two-layer MLP branch added to an identity path
    ``(B, C) -> (B, C)`` (He et al., 2016). With ``residual=False`` the same layers without the
    skip, ``relu(W_2 relu(W_1 x + b_1) + b_2)``, so both networks have the same parameters."""

    def __init__(self, width: PosInt, *, residual: bool = True) -> None:
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(width, width), nn.Linear(width, width)
        self.residual = residual

    @checked(dims={"C": "linear1.in_features"})
    def forward(self, x: Float[Tensor, "B C"]) -> torch.Tensor:
        branch = self.linear2(F.relu(self.linear1(x)))  # (B, C)
        return x + branch if self.residual else F.relu(branch)


@checked
def deep_mlp(num_blocks: PosInt, *, in_features: PosInt = 64, width: PosInt = 64, num_classes: PosInt = 10,
             residual: bool = True, init: Scheme = "default") -> nn.Sequential:
    """``Linear(in, C)``, ``num_blocks`` :class:`ResidualBlock` s (2 linear layers each) and a
    ``Linear(C, classes)`` head: ``2 num_blocks + 2`` linear layers, ``(B, in) -> (B, classes)``.
    ``init`` applies :func:`init_linear_` to every linear layer."""
    model = nn.Sequential(nn.Linear(in_features, width),
                          *[ResidualBlock(width, residual=residual) for _ in range(num_blocks)],
                          nn.Linear(width, num_classes))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            init_linear_(m, init)
    return model


@checked
@dataclass
class SavedActivations:
    """Tensors autograd saved for the backward pass during one forward call (parameters
    excluded, each storage counted once): ``count`` storages holding ``bytes`` bytes."""

    count: NonNegInt
    bytes: NonNegInt


@checked
def saved_activations(fn: Callable[[], object], exclude: nn.Module | None = None) -> SavedActivations:
    """Run ``fn()`` and measure what autograd keeps for the backward pass, through
    ``torch.autograd.graph.saved_tensors_hooks``: every tensor an operation saves passes through
    the hook. Storages of ``exclude`` 's parameters (the weights, which exist anyway) are left
    out, and a storage saved by two operations (a ReLU's output is also the next layer's input)
    is counted once. This is the memory that activation checkpointing trades for recomputation."""
    skip = {p.untyped_storage().data_ptr() for p in exclude.parameters()} if exclude is not None else set()
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return SavedActivations(len(seen), sum(seen.values()))
