"""Building blocks of modern CNNs: batch normalisation for images, the ResNet basic block (with a
from-scratch forward pass), and the small networks of the shifted-digits experiment.

Explained in chapter 3, "Modern CNNs". The **basic block** of ResNet-18/34 (He et al., 2016):

    out = ReLU( BN(conv3x3(ReLU(BN(conv3x3_stride_s(x))))) + shortcut(x) )

where ``shortcut`` is the identity when the shape is kept, and a 1x1 convolution with stride s
followed by BN when the block changes the number of channels or the resolution. Submodule names
follow torchvision's ``BasicBlock`` (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``downsample``).
``BasicBlock(..., scratch=True)`` computes the same thing with :func:`utils.conv.conv2d_unfold`
and :func:`batch_norm2d` (tested equal to the torch-layer path, float64, values, gradients and
running statistics).

Shapes: B batch, C channels, H/W height/width, K kernel size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import Float, OneOf, PosInt, Shaped, Tensor, check, checked
from utils.conv import conv2d_unfold

__all__ = ["batch_norm2d", "BasicBlock", "Subsample2d", "DOWNSAMPLERS", "SmallCNN", "TinyResNet"]


@checked
def batch_norm2d(x: Float[Tensor, "B C H W"], bn: nn.BatchNorm2d) -> torch.Tensor:
    """Batch normalisation of ``x (B, C, H, W)`` with the parameters and buffers of ``bn``.

    Training mode: per channel, the mean and biased variance over ``(B, H, W)`` normalise; the
    running statistics are updated in place with ``bn.momentum`` (the **unbiased** variance, as
    PyTorch does). Evaluation mode: the running statistics normalise. Counterpart: ``bn(x)``."""
    check(x.shape[1] == bn.num_features, "x", f"of shape (B, C={bn.num_features}, H, W) to match bn", tuple(x.shape))
    if bn.training:
        mean = x.mean(dim=(0, 2, 3))  # (C,)
        var = x.var(dim=(0, 2, 3), unbiased=False)  # (C,)
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            bn.num_batches_tracked += 1
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)  # None: running mean
            bn.running_mean.mul_(1 - m).add_(m * mean)
            bn.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
    else:
        mean, var = bn.running_mean, bn.running_var
    y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps)  # (B, C, H, W)
    return y * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]


@checked
class BasicBlock(nn.Module):
    """The ResNet basic block ``(B, C_in, H, W) -> (B, C_out, H/s, W/s)``.

    Args:
        in_channels, out_channels: C_in, C_out.
        stride: s of the first 3x3 convolution (2 halves the resolution).
        scratch: compute the forward pass with our im2col convolution and :func:`batch_norm2d`
            instead of the torch layers (same parameters, same result; slower).
    """

    def __init__(self, in_channels: PosInt, out_channels: PosInt, stride: PosInt = 1, *, scratch: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:  # the identity would not fit: project with a 1x1 conv
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        self.stride, self.scratch = stride, scratch

    @checked(dims={"C_in": "conv1.in_channels"})
    def forward(self, x: Float[Tensor, "B C_in H W"]) -> torch.Tensor:
        if self.scratch:
            return self._forward_scratch(x)
        identity = x if self.downsample is None else self.downsample(x)  # (B, C_out, H/s, W/s)
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)

    def _forward_scratch(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if self.downsample is None:
            identity = x
        else:  # 1x1 convolution with stride s, then batch norm
            identity = batch_norm2d(conv2d_unfold(x, self.downsample[0].weight, stride=s), self.downsample[1])
        out = F.relu(batch_norm2d(conv2d_unfold(x, self.conv1.weight, stride=s, padding=1), self.bn1))
        out = batch_norm2d(conv2d_unfold(out, self.conv2.weight, padding=1), self.bn2)
        return F.relu(out + identity)  # (B, C_out, H/s, W/s)


@checked
class Subsample2d(nn.Module):
    """Plain downsampling: keep every ``factor``-th row and column, ``x[..., ::f, ::f]``. The
    control for pooling: it halves the resolution like a 2x2 pooling but looks at one pixel of
    each window."""

    def __init__(self, factor: PosInt = 2) -> None:
        super().__init__()
        self.factor = factor

    @checked
    def forward(self, x: Shaped[Tensor, "... H W"]) -> torch.Tensor:
        return x[..., ::self.factor, ::self.factor]  # (B, C, H/f, W/f)


DOWNSAMPLERS = {"max": lambda: nn.MaxPool2d(2), "avg": lambda: nn.AvgPool2d(2), "subsample": lambda: Subsample2d(2)}


@checked
class SmallCNN(nn.Module):
    """Three stages of conv3x3 (padding 1) -> BN -> ReLU -> 2x downsampling, then global average
    pooling and a linear classifier: ``(B, 1, H, W) -> (B, classes)``.

    ``downsample`` is ``"max"`` (2x2 max pooling), ``"avg"`` (2x2 average pooling) or
    ``"subsample"`` (:class:`Subsample2d`): everything else is identical, so the three differ only
    in how they halve the resolution."""

    def __init__(self, downsample: OneOf(*DOWNSAMPLERS) = "max", channels: Sequence[PosInt] = (16, 32, 32),
                 num_classes: PosInt = 10) -> None:
        super().__init__()
        self.min_size = 2 ** len(channels)  # each stage halves H and W
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                       DOWNSAMPLERS[downsample]()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    @checked
    def forward(self, x: Float[Tensor, "B 1 H W"]) -> torch.Tensor:
        check(min(x.shape[2:]) >= self.min_size, "x", f"at least {self.min_size} pixels high and wide", tuple(x.shape))
        return self.head(self.features(x).mean(dim=(2, 3)))  # global average pooling: (B, C)


@checked
class TinyResNet(nn.Module):
    """A ResNet for small grey images: a 3x3 stem (conv, BN, ReLU) and 2x2 max pooling, one
    :class:`BasicBlock` per entry of ``channels`` (stride 1, then 2), global average pooling and
    a linear classifier: ``(B, 1, H, W) -> (B, classes)``."""

    def __init__(self, channels: Sequence[PosInt] = (16, 32, 64), num_classes: PosInt = 10) -> None:
        super().__init__()
        check(len(channels) > 0, "channels", "a non-empty sequence of positive ints", channels)
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]),
                                  nn.ReLU(), nn.MaxPool2d(2))
        blocks, c_in = [], channels[0]
        for i, c in enumerate(channels):
            blocks.append(BasicBlock(c_in, c, stride=1 if i == 0 else 2))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    @checked
    def forward(self, x: Float[Tensor, "B 1 H W"]) -> torch.Tensor:
        check(min(x.shape[2:]) >= 2, "x", "at least 2 pixels high and wide (the stem pools 2x2)", tuple(x.shape))
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))  # (B, classes)
