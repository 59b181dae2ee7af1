"""Making models smaller and faster: distillation, int8 quantization, magnitude pruning.

Explained in chapter 6, "Efficiency: distillation, quantization, pruning". Three ideas, each
with the measurement that tells whether it paid off:

* **Knowledge distillation** (Hinton, Vinyals & Dean, 2015): a small *student* learns from a
  large *teacher*'s softened probabilities as well as from the labels,

      L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y).

  The factor T^2 keeps the gradient of the soft term comparable across temperatures.
* **Post-training dynamic int8 quantization**: ``nn.Linear`` weights stored as int8 with one
  scale per tensor, activations quantized on the fly (``torch.ao.quantization.quantize_dynamic``,
  CPU only). :func:`quantize_int8_symmetric` is the from-scratch rule, tested equal to PyTorch's.
* **Magnitude pruning** (Han et al., 2015): zero the weights of smallest absolute value,
  here globally over all ``Linear``/``Conv`` layers with ``torch.nn.utils.prune``.

And the rulers: :func:`model_size_bytes`, :func:`sparsity`, :func:`time_inference`.

Shapes: N batch, K classes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
import io
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import TensorDataset

from utils._validate import FloatIn, Float, Int, NonNegInt, PosFloat, PosInt, Prob, Tensor, check, check_ids, checked

__all__ = [
    "distillation_loss",
    "DistillationLoss",
    "distillation_dataset",
    "model_size_bytes",
    "quantize_int8_symmetric",
    "quantize_dynamic_int8",
    "prunable_weights",
    "global_magnitude_prune",
    "sparsity",
    "time_inference",
]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


# ----------------------------------------------------------------------------------------
# Knowledge distillation
# ----------------------------------------------------------------------------------------

def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor) -> None:
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if student_logits.ndim != 2:
        raise ValueError(f"student_logits must have shape (N, K), got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must have the student's shape {tuple(student_logits.shape)}, "
                         f"got {tuple(teacher_logits.shape)}")
    if targets.shape != student_logits.shape[:1]:
        raise ValueError(f"targets must have shape ({student_logits.shape[0]},), got {tuple(targets.shape)}")


@checked
def distillation_loss(
    student_logits: Float[Tensor, "N K"],
    teacher_logits: Float[Tensor, "N K"],
    targets: Int[Tensor, "N"],
    temperature: PosFloat = 4.0,
    alpha: Prob = 0.9,
) -> torch.Tensor:
    """Hinton et al. (2015) distillation loss, averaged over the batch.

    ``alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(student_logits, targets)`` with
    ``p = softmax(logits / T)``; ``KL(p || q) = sum_k p_k (log p_k - log q_k)``. No gradient
    flows into the teacher's logits.

    Args:
        student_logits: ``(N, K)``.
        teacher_logits: ``(N, K)``, e.g. precomputed once by a frozen teacher.
        targets: ``(N,)`` int64 class labels.
        temperature: T > 0; larger T softens both distributions and shows the teacher's
            "dark knowledge" (how it ranks the wrong classes).
        alpha: weight of the soft term in [0, 1]; 0 is plain cross-entropy.
    """
    _check_logits(student_logits, teacher_logits, targets)
    check_ids("targets", targets, student_logits.shape[1])
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    T = float(temperature)
    log_p_s = F.log_softmax(student_logits / T, dim=-1)  # (N, K)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=-1)  # (N, K)
    soft = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean")  # KL(p_t || p_s), mean over N
    hard = F.cross_entropy(student_logits, targets)
    return alpha * T * T * soft + (1.0 - alpha) * hard


@checked
class DistillationLoss:
    """``loss_fn(student_logits, packed)`` for :func:`utils.training.fit`.

    ``packed`` is ``(N, K + 1)``: the teacher's logits in the first K columns and the label in
    the last (see :func:`distillation_dataset`), so that a training loop that knows nothing
    about distillation carries the teacher's knowledge along with each batch. Train with
    ``fit(..., classification=False)`` (the packed targets are not labels) and evaluate on a
    plain loader.
    """

    def __init__(self, temperature: PosFloat = 4.0, alpha: Prob = 0.9) -> None:
        self.temperature, self.alpha = temperature, alpha

    @checked
    def __call__(self, student_logits: Float[Tensor, "N K"], packed: Float[Tensor, "N K1"]) -> torch.Tensor:
        if packed.ndim != 2 or student_logits.ndim != 2 or packed.shape[1] != student_logits.shape[1] + 1:
            raise ValueError(f"packed must have shape (N, K + 1) = (N, {student_logits.shape[-1] + 1}), "
                             f"got {tuple(packed.shape)}")
        teacher_logits, targets = packed[:, :-1], packed[:, -1].long()  # (N, K), (N,)
        return distillation_loss(student_logits, teacher_logits, targets, self.temperature, self.alpha)


@checked
def distillation_dataset(X: Float[Tensor, "N ..."], y: Int[Tensor, "N"],
                         teacher_logits: Float[Tensor, "N K"]) -> TensorDataset:
    """``TensorDataset(X, packed)`` with ``packed = [teacher_logits | y]`` of shape ``(N, K + 1)``."""
    check_ids("y", y, teacher_logits.shape[1])
    if teacher_logits.ndim != 2 or teacher_logits.shape[0] != len(X) or y.shape != (len(X),):
        raise ValueError(f"need X (N, ...), y (N,), teacher_logits (N, K) with the same N; got "
                         f"{tuple(X.shape)}, {tuple(y.shape)}, {tuple(teacher_logits.shape)}")
    packed = torch.cat([teacher_logits.detach().float(), y.float().unsqueeze(1)], dim=1)  # (N, K + 1)
    return TensorDataset(X, packed)


# ----------------------------------------------------------------------------------------
# Size and quantization
# ----------------------------------------------------------------------------------------

@checked
def model_size_bytes(model: nn.Module, *, serialized: bool = True) -> int:
    """Bytes a model takes.

    ``serialized=True`` (default): length of ``torch.save(model.state_dict())`` in memory,
    which also counts quantized layers (their packed int8 weights are not ``Parameter`` s) and
    a little format overhead. ``serialized=False``: the exact sum of ``numel * element_size``
    over parameters and buffers (0 for the int8 weights of a dynamically quantized layer).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not serialized:
        tensors = list(model.parameters()) + list(model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@checked
def quantize_int8_symmetric(w: Float[Tensor, "..."]) -> tuple[torch.Tensor, float]:
    """Per-tensor symmetric int8 quantization, the rule PyTorch uses for dynamic-quantized weights.

    ``scale = max|w| / 127.5``, ``q = clamp(round(w / scale), -128, 127)``, ``w ≈ q * scale``
    (the zero point is 0, so 0.0 stays exactly 0). Returns ``(q, scale)`` with ``q`` int8 of
    ``w``'s shape. The rounding error of each weight is at most ``scale / 2`` (up to float32
    rounding).
    """
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"w must be a floating-point tensor, got {type(w).__name__}")
    check(w.numel() > 0, "w", "a non-empty tensor", f"shape {tuple(w.shape)}")
    w = w.detach().float()
    scale = (w.abs().max() / 127.5).clamp(min=torch.finfo(torch.float32).eps)  # float32, as PyTorch computes it
    q = torch.clamp(torch.round(w / scale), -128, 127).to(torch.int8)  # round half to even, like PyTorch
    return q, scale.item()


@checked
def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers use int8 weights and dynamically quantized
    activations (``torch.ao.quantization.quantize_dynamic``; runs on CPU only).

    The original model is left unchanged. PyTorch marks the ``torch.ao.quantization`` eager API
    as deprecated in favour of the ``torchao`` package; the deprecation warnings are silenced here
    and the call still works in torch 2.13.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:  # a future torch without the eager API
        raise RuntimeError("this torch has no torch.ao.quantization.quantize_dynamic; "
                           "use the torchao package (torchao.quantization) instead") from exc
    cpu_copy = copy.deepcopy(model).to("cpu").eval()  # leaves the caller's model, device and mode alone
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        return quantize_dynamic(cpu_copy, {nn.Linear}, dtype=torch.qint8, inplace=True)


# ----------------------------------------------------------------------------------------
# Pruning
# ----------------------------------------------------------------------------------------

@checked
def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every ``Linear``/``Conv`` layer: the list ``prune`` expects."""
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]


@checked
def global_magnitude_prune(model: nn.Module, amount: FloatIn(0.0, 1.0, hi_open=True), *,
                           permanent: bool = False) -> nn.Module:
    """Zero the fraction ``amount`` of smallest-|w| weights, ranked globally over all layers.

    Uses ``prune.global_unstructured(..., pruning_method=prune.L1Unstructured)``: each layer
    gets ``weight_orig`` (a parameter) and ``weight_mask`` (a buffer), and ``weight`` becomes
    ``weight_orig * weight_mask``, so fine-tuning keeps pruned weights at zero. With
    ``permanent=True`` the re-parametrisation is removed (``prune.remove``): plain zeros remain.
    Biases are not pruned. Pruning an already pruned model ranks the remaining weights only
    (PyTorch combines masks), so pass the *total* target to a fresh copy instead. Modifies and
    returns ``model``.
    """
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
    params = prunable_weights(model)
    if not params:
        raise ValueError("model has no Linear or Conv layer to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(amount))
    if permanent:
        for module, name in params:
            prune.remove(module, name)
    return model


@checked
def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the weights of the ``Linear``/``Conv`` layers (biases excluded).

    Reads ``module.weight``, which under pruning is the masked tensor.
    """
    weights = [getattr(m, name) for m, name in prunable_weights(model)]
    if not weights:
        raise ValueError("model has no Linear or Conv layer")
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------

@checked
def time_inference(model: Callable, x: torch.Tensor, repeats: PosInt = 20, *, warmup: NonNegInt = 3) -> float:
    """Median wall time in milliseconds of ``model(x)`` under ``torch.inference_mode``.

    ``model`` may be any callable (an ``nn.Module`` is put in eval mode). The median of
    ``repeats`` runs, after ``warmup`` untimed ones, resists the outliers of a shared machine;
    CUDA work is synchronised before each clock reading. Compare timings only on one machine
    with one thread setting.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats <= 0:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    if isinstance(model, nn.Module):
        model.eval()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
