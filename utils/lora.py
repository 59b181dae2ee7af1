"""LoRA (Hu et al., 2021): fine-tune a large model by learning a low-rank change of a few weights.

Explained in chapter 4, "LoRA: instruction-tuning a real LLM". A frozen ``nn.Linear`` with weight
W (out, in) gets two small trainable matrices A (r, in) and B (out, r):

    y = x W^T + (alpha / r) * x A^T B^T,        i.e. W_eff = W + (alpha / r) B A.

B starts at zero, so at step 0 the model is exactly the pretrained one (and A gets no gradient
until B has moved); A starts random (Kaiming-uniform, as ``nn.Linear`` and ``peft``). ``alpha / r``
keeps the size of the update roughly independent of the rank. After training, :meth:`LoRALinear.merge`
adds the product into W, so inference costs nothing extra. Parameter names and initialisation
follow ``peft`` (``base_layer``, ``lora_A``, ``lora_B``), and the outputs equal ``peft``'s for the
same weights (tested); :func:`load_peft_weights` reads an adapter ``peft`` saved.

Shapes: N leading dims (batch, time), ``in``/``out`` the Linear's features, r the rank.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated

import torch
from torch import nn

from utils._validate import Dropout, Float, PosFloat, PosInt, Tensor, checked

__all__ = ["LoRALinear", "add_lora", "merge_lora", "lora_state_dict", "load_peft_weights", "count_parameters"]


@checked
class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update scaled by ``alpha / r``."""

    def __init__(self, base: Annotated[nn.Linear, "an nn.Linear layer"], r: PosInt = 8, alpha: PosFloat = 16.0,
                 dropout: Dropout = 0.0) -> None:
        super().__init__()
        self.base_layer = base
        base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and peft) initialise a weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A, shape (out, in): what merging adds to the base weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    @checked(dims={"in": "base_layer.in_features"})
    def forward(self, x: Float[Tensor, "... in"]) -> torch.Tensor:
        y = self.base_layer(x)  # (N, out)
        if not self.merged:
            y = y + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling  # (N, in) -> (N, r) -> (N, out)
        return y

    @torch.no_grad()
    def merge(self) -> None:
        """W <- W + (alpha / r) B A; the forward pass then skips the low-rank branch."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged; unmerge() first")
        self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (up to float rounding)."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged")
        self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


@checked
def add_lora(model: nn.Module, targets: str | Sequence[str] = ("q_proj", "v_proj"), *, r: PosInt = 8,
             alpha: PosFloat = 16.0, dropout: Dropout = 0.0) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each ``nn.Linear`` whose name ends with one of
    ``targets`` in a :class:`LoRALinear` (in place). Returns the wrapped modules' names."""
    if isinstance(targets, str):
        targets = (targets,)
    model.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.split(".")[-1] in targets]
    if not names:
        raise ValueError(f"targets: no nn.Linear named {targets} in the model")
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, LoRALinear(getattr(owner, child), r=r, alpha=alpha, dropout=dropout))
    return names


@checked
def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every :class:`LoRALinear` of ``model`` into its base weight and put the plain
    ``nn.Linear`` back (as ``peft``'s ``merge_and_unload``). In place; returns ``model``."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            if not module.merged:
                module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.base_layer)
    return model


@checked
def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA matrices (``...lora_A`` (r, in), ``...lora_B`` (out, r)): what an adapter file holds."""
    return {k: v for k, v in model.state_dict().items() if k.endswith((".lora_A", ".lora_B"))}


_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(.*\.lora_[AB])(?:\.default)?\.weight$")


@checked
def load_peft_weights(model: nn.Module, state: Mapping[str, Tensor]) -> int:
    """Copy an adapter saved by ``peft`` (keys ``base_model.model.<path>.lora_A.weight``) into the
    :class:`LoRALinear` layers of ``model`` (a ``transformers`` model, or our :class:`utils.llama.Llama`
    for an adapter trained on ``transformers``' Llama); returns how many tensors were copied. Every
    LoRA layer must receive both matrices."""
    ours = dict(model.named_parameters())
    copied = set()
    with torch.no_grad():
        for key, value in state.items():
            m = _PEFT_KEY.match(key)
            # transformers' Llama keeps its blocks under "model."; utils.llama.Llama has them at the top level
            name = next((n for n in (m.group(1), m.group(1).removeprefix("model.")) if n in ours), None) if m else None
            if name is None:
                raise ValueError(f"state: adapter key {key!r} matches no LoRA parameter of the model")
            target = ours[name]
            if target.shape != value.shape:
                raise ValueError(f"state: {key} has shape {tuple(value.shape)}, the model's {tuple(target.shape)}")
            target.copy_(value)
            copied.add(name)
    expected = {k for k in ours if k.endswith((".lora_A", ".lora_B"))}
    if copied != expected:
        raise ValueError(f"state: the adapter lacks {sorted(expected - copied)[:3]}")
    return len(copied)


@checked
def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (a tied matrix counted once)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
