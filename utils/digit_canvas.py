"""Larger, shiftable digits: scikit-learn's 8x8 digits enlarged and placed on a bigger canvas,
with a validation split, for the experiments of chapter 3, "Modern CNNs".

Each 8x8 digit is enlarged ``scale`` times (bilinear interpolation) and pasted on a square
``canvas`` of zeros, centred or shifted by ``(dy, dx)`` pixels. A network trained on centred
digits can then be tested on the same test digits moved by a known number of pixels.

The split: the book's fixed test set (450 images, :func:`utils.data.load_digits_split`) stays the
test set; a stratified ``val_size`` of the 1,347 training images is held out for validation, for
every choice (epochs, learning rate, architecture) made before touching the test set.

Shapes: N images, S canvas side, 1 channel: ``(N, 1, S, S)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from utils.data import load_digits_split

__all__ = ["enlarge", "place", "CanvasSplit", "canvas_digits"]


def enlarge(images: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """``(N, 1, 8, 8) -> (N, 1, 8 scale, 8 scale)`` by bilinear interpolation."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(getattr(images, 'shape', ()))}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)


def place(images: torch.Tensor, canvas: int = 32, shift: tuple[int, int] | torch.Tensor = (0, 0)) -> torch.Tensor:
    """Paste ``images (N, 1, h, w)`` on a zero canvas ``(N, 1, S, S)``, centred and then moved by
    ``shift``: one ``(dy, dx)`` for all images, or a ``(N, 2)`` integer tensor, one per image.
    Positive ``dy`` moves down, positive ``dx`` right. The image must stay inside the canvas."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must have shape (N, 1, h, w), got {tuple(getattr(images, 'shape', ()))}")
    N, _, h, w = images.shape
    shifts = torch.as_tensor(shift, dtype=torch.long)
    shifts = shifts.expand(N, 2) if shifts.shape == (2,) else shifts
    if shifts.shape != (N, 2):
        raise ValueError(f"shift must be (dy, dx) or an (N, 2) tensor with N={N}, got shape {tuple(shifts.shape)}")
    top, left = (canvas - h) // 2, (canvas - w) // 2
    ys, xs = top + shifts[:, 0], left + shifts[:, 1]
    if ys.min() < 0 or xs.min() < 0 or (ys + h).max() > canvas or (xs + w).max() > canvas:
        raise ValueError(f"a shift of up to {shifts.abs().max().item()} pixels moves a {h}x{w} image off the "
                         f"{canvas}x{canvas} canvas (at most {min(top, left)} fits)")
    out = images.new_zeros(N, images.shape[1], canvas, canvas)
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
        out[i, :, y:y + h, x:x + w] = images[i]
    return out


@dataclass(frozen=True)
class CanvasSplit:
    """Enlarged digits ``(N, 1, s, s)`` (not yet placed) with labels ``(N,)``, split three ways."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def canvas_digits(scale: int = 2, val_size: int = 300, seed: int = 0) -> CanvasSplit:
    """The book's digits split (1,347 train, 450 test) with ``val_size`` training images held
    out (stratified, seeded), each image enlarged ``scale`` times: place them with :func:`place`."""
    from sklearn.model_selection import train_test_split

    split = load_digits_split()
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 10 <= val_size <= 1000:
        raise ValueError(f"val_size must be an int between 10 and 1000, got {val_size!r}")
    idx = torch.arange(len(split.y_train)).numpy()
    tr, va = train_test_split(idx, test_size=val_size, random_state=seed, stratify=split.y_train.numpy())
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    big = lambda x: enlarge(x, scale)  # noqa: E731
    return CanvasSplit(big(split.X_train[tr]), split.y_train[tr], big(split.X_train[va]), split.y_train[va],
                       big(split.X_test), split.y_test)
