"""Pure compute of the convolution explorer (chapter 3, "Convolution and CNNs").

One step of a single-channel convolution at a chosen kernel position: the receptive field, the
element-wise products, their sum and the output map filled up to that position. Arrays in,
a dataclass out, no plotting (the view is :mod:`utils.widgets.conv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from utils._validate import Finite, NonNegInt, PosInt, checked
from utils.conv import conv_output_size

__all__ = ["KERNELS", "ConvStep", "conv_step", "parse_kernel", "pool_views"]

KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float),
    "edge (Laplacian)": np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=float),
    "vertical edge (Sobel)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float),
    "horizontal edge (Sobel)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float),
    "blur (box)": np.full((3, 3), 1 / 9),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
}


@checked
@dataclass(frozen=True)
class ConvStep:
    """State of the convolution after computing output position ``position`` (row-major).

    padded: ``(H + 2p, W + 2p)`` input; kernel: ``(K, K)``; window: ``(K, K)`` receptive field;
    products: window * kernel; total: their sum (+ bias); output: ``(H_out, W_out)`` with NaN
    where not yet computed; full_output: the finished map; row, col: the output position;
    top, left: the window's corner in ``padded``.
    """

    padded: np.ndarray
    kernel: np.ndarray
    window: np.ndarray
    products: np.ndarray
    total: float
    output: np.ndarray
    full_output: np.ndarray
    row: NonNegInt
    col: NonNegInt
    top: NonNegInt
    left: NonNegInt
    stride: PosInt
    padding: NonNegInt

    @property
    def num_positions(self) -> int:
        return self.full_output.size


@checked
def parse_kernel(text: str) -> np.ndarray:
    """Parse a custom square kernel written as rows separated by ';' and values by spaces or commas,
    e.g. ``"1 0 -1; 2 0 -2; 1 0 -1"``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string like '1 0 -1; 2 0 -2; 1 0 -1', got {type(text).__name__}")
    try:
        rows = [[float(v) for v in r.replace(",", " ").split()] for r in text.strip().split(";") if r.strip()]
    except ValueError as exc:
        raise ValueError(f"text must hold numbers (the kernel values): {exc}") from None
    if not rows or any(len(r) != len(rows) for r in rows):
        raise ValueError(f"text must describe a square kernel (K rows of K numbers separated by ';'), got {text!r}")
    return np.array(rows)


@checked
def conv_step(image: np.ndarray | list | torch.Tensor, kernel: np.ndarray | list | torch.Tensor, *,
              stride: PosInt = 1, padding: NonNegInt = 0, position: NonNegInt = 0, bias: Finite = 0.0) -> ConvStep:
    """Compute output position ``position`` (0-based, row-major) of the convolution of a 2-D ``image``."""
    image = np.asarray(image, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be square (K, K), got shape {kernel.shape}")
    K = kernel.shape[0]
    H_out = conv_output_size(image.shape[0], K, stride, padding)
    W_out = conv_output_size(image.shape[1], K, stride, padding)
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not 0 <= position < H_out * W_out:
        raise ValueError(f"position must be an int in [0, {H_out * W_out}), got {position!r}")
    padded = np.pad(image, padding)  # (H + 2p, W + 2p)
    row, col = divmod(int(position), W_out)
    top, left = row * stride, col * stride
    window = padded[top:top + K, left:left + K]  # (K, K)
    products = window * kernel
    full = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None],
                    stride=stride, padding=padding)[0, 0].numpy() + bias  # (H_out, W_out)
    output = np.full_like(full, np.nan)
    output.flat[: position + 1] = full.flat[: position + 1]
    return ConvStep(padded, kernel, window, products, float(products.sum() + bias), output, full,
                    row, col, top, left, stride, padding)


@checked
def pool_views(feature_map: np.ndarray | list | torch.Tensor, size: PosInt = 2) -> tuple[np.ndarray, np.ndarray]:
    """Max and average pooling (window ``size``, stride ``size``) of a 2-D map."""
    fm = torch.as_tensor(np.nan_to_num(np.asarray(feature_map, dtype=float)))[None, None]
    if fm.ndim != 4 or min(fm.shape[-2:]) < size:
        raise ValueError(f"feature_map must be 2-D and at least {size}x{size}, got {tuple(fm.shape[2:])}")
    return F.max_pool2d(fm, size)[0, 0].numpy(), F.avg_pool2d(fm, size)[0, 0].numpy()
