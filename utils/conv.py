"""Convolution and pooling from scratch, and the small CNN used for the digits.

Explained in chapter 3, "Convolution and CNNs". Deep-learning frameworks compute
*cross-correlation* (the kernel is not flipped):

    y[b, o, i, j] = bias[o] + sum_c sum_m sum_n  x_pad[b, c, i*s + m*d, j*s + n*d] * w[o, c, m, n]

with stride s, dilation d and zero padding p, and an output of size
floor((H + 2p - d(K - 1) - 1) / s) + 1 per spatial dimension. Two versions exist here: a loop
version that reads like the formula, and an unfold (im2col) version that turns the sum into one
matrix product. Both match ``torch.nn.functional.conv2d`` (tested); ours exist to be read.

Shapes: B batch, C/C_in/C_out channels, H/W height/width, K kernel size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Dropout, Float, NonNegInt, PosInt, Tensor, checked

__all__ = [
    "conv_output_size",
    "conv2d_loops",
    "conv2d_unfold",
    "max_pool2d",
    "avg_pool2d",
    "DigitsCNN",
    "count_parameters",
]


def _pos_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@checked
def conv_output_size(size: PosInt, kernel_size: PosInt, stride: PosInt = 1, padding: NonNegInt = 0,
                     dilation: PosInt = 1) -> int:
    """floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1.

    Raises ``ValueError`` when the (dilated) kernel is larger than the padded input.
    """
    _pos_int("size", size), _pos_int("kernel_size", kernel_size), _pos_int("stride", stride)
    _pos_int("dilation", dilation)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    span = dilation * (kernel_size - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(f"kernel (span {span} with dilation {dilation}) is larger than the padded input "
                         f"({size} + 2*{padding} = {size + 2 * padding})")
    return (size + 2 * padding - span) // stride + 1


def _check_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must have shape (B, C_in, H, W), got {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(f"weight must have shape (C_out, C_in, K_h, K_w), got {tuple(getattr(weight, 'shape', ()))}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"channel mismatch: x has C_in={x.shape[1]} channels but weight expects "
                         f"C_in={weight.shape[1]} (weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape (C_out,) = ({weight.shape[0]},), got {tuple(bias.shape)}")


@checked
def conv2d_loops(x: Float[Tensor, "B C_in H W"], weight: Float[Tensor, "C_out C_in K_h K_w"],
                 bias: Float[Tensor, "C_out"] | None = None, *,
                 stride: PosInt = 1, padding: NonNegInt = 0, dilation: PosInt = 1) -> torch.Tensor:
    """2-D cross-correlation with explicit loops over output positions (slow; for reading).

    ``x`` ``(B, C_in, H, W)``, ``weight`` ``(C_out, C_in, K_h, K_w)``, ``bias`` ``(C_out,)``
    -> ``(B, C_out, H_out, W_out)``. Counterpart: ``torch.nn.functional.conv2d``.
    """
    _check_conv(x, weight, bias)
    C_out, _, K_h, K_w = weight.shape
    H_out = conv_output_size(x.shape[2], K_h, stride, padding, dilation)
    W_out = conv_output_size(x.shape[3], K_w, stride, padding, dilation)
    x_pad = F.pad(x, (padding, padding, padding, padding))  # (B, C_in, H + 2p, W + 2p)
    out = x.new_zeros(x.shape[0], C_out, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            # 1. the receptive field of output (i, j): rows i*s, i*s + d, ..., cols likewise
            window = x_pad[:, :, i * stride: i * stride + dilation * (K_h - 1) + 1: dilation,
                           j * stride: j * stride + dilation * (K_w - 1) + 1: dilation]  # (B, C_in, K_h, K_w)
            # 2. multiply element-wise with every kernel and sum over channels and kernel positions
            out[:, :, i, j] = torch.einsum("bckl,ockl->bo", window, weight)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)  # 3. add one bias per output channel
    return out


@checked
def conv2d_unfold(x: Float[Tensor, "B C_in H W"], weight: Float[Tensor, "C_out C_in K_h K_w"],
                  bias: Float[Tensor, "C_out"] | None = None, *,
                  stride: PosInt = 1, padding: NonNegInt = 0, dilation: PosInt = 1) -> torch.Tensor:
    """The same convolution as one matrix product (im2col): every receptive field becomes a column.

    ``F.unfold`` gives ``(B, C_in*K_h*K_w, L)`` with L = H_out*W_out; the kernels flattened to
    ``(C_out, C_in*K_h*K_w)`` multiply it to ``(B, C_out, L)``, reshaped to ``(B, C_out, H_out, W_out)``.
    """
    _check_conv(x, weight, bias)
    C_out, _, K_h, K_w = weight.shape
    H_out = conv_output_size(x.shape[2], K_h, stride, padding, dilation)
    W_out = conv_output_size(x.shape[3], K_w, stride, padding, dilation)
    cols = F.unfold(x, (K_h, K_w), dilation=dilation, padding=padding, stride=stride)  # (B, C_in*K_h*K_w, L)
    out = weight.reshape(C_out, -1) @ cols  # (B, C_out, L)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.reshape(x.shape[0], C_out, H_out, W_out)  # (B, C_out, H_out, W_out)


def _pool(x: torch.Tensor, kernel_size: int, stride: int | None, reduce: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(getattr(x, 'shape', ()))}")
    stride = kernel_size if stride is None else stride
    H_out = conv_output_size(x.shape[2], kernel_size, stride)
    W_out = conv_output_size(x.shape[3], kernel_size, stride)
    B, C = x.shape[:2]
    cols = F.unfold(x.reshape(B * C, 1, *x.shape[2:]), kernel_size, stride=stride)  # (B*C, K*K, L)
    pooled = cols.amax(dim=1) if reduce == "max" else cols.mean(dim=1)  # (B*C, L)
    return pooled.reshape(B, C, H_out, W_out)


@checked
def max_pool2d(x: Float[Tensor, "B C H W"], kernel_size: PosInt, stride: PosInt | None = None) -> torch.Tensor:
    """Maximum over each ``kernel_size`` x ``kernel_size`` window (stride defaults to the kernel size).
    ``(B, C, H, W)`` -> ``(B, C, H_out, W_out)``. Counterpart: ``F.max_pool2d``."""
    return _pool(x, kernel_size, stride, "max")


@checked
def avg_pool2d(x: Float[Tensor, "B C H W"], kernel_size: PosInt, stride: PosInt | None = None) -> torch.Tensor:
    """Mean over each window. Counterpart: ``F.avg_pool2d``."""
    return _pool(x, kernel_size, stride, "mean")


@checked
class DigitsCNN(nn.Module):
    """A LeNet-style CNN for the 8x8 digits.

    (B, 1, 8, 8) -conv 3x3, pad 1-> (B, c1, 8, 8) -ReLU, max-pool 2-> (B, c1, 4, 4)
    -conv 3x3, pad 1-> (B, c2, 4, 4) -ReLU, max-pool 2-> (B, c2, 2, 2) -flatten-> (B, 4*c2)
    -linear-> (B, 64) -ReLU, dropout-> -linear-> (B, num_classes) logits.
    """

    def __init__(self, channels: tuple[PosInt, PosInt] = (16, 32), num_classes: PosInt = 10,
                 dropout: Dropout = 0.0) -> None:
        super().__init__()
        if len(channels) != 2 or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ValueError(f"channels must be two positive ints, got {channels!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 2 * 2, 64), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(64, num_classes))

    @checked
    def forward(self, x: Float[Tensor, "B 1 8 8"]) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"x must have shape (B, 1, 8, 8), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


@checked
def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
