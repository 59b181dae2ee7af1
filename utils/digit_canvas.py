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

from utils._validate import Float, Int, Integer, IntIn, PosInt, Real, Seed, Tensor, check, checked
from utils.data import load_digits_split

__all__ = ["enlarge", "place", "CanvasSplit", "canvas_digits"]


@checked
def enlarge(images: Float[Tensor, "N 1 H W"], scale: PosInt = 2) -> torch.Tensor:
    """``(N, 1, 8, 8) -> (N, 1, 8 scale, 8 scale)`` by bilinear interpolation."""
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)


@checked
def place(images: Real[Tensor, "N C h w"], canvas: PosInt = 32,
          shift: tuple[int, int] | Integer[Tensor, "2"] | Integer[Tensor, "N 2"] = (0, 0)) -> torch.Tensor:
    """Paste ``images (N, 1, h, w)`` on a zero canvas ``(N, 1, S, S)``, centred and then moved by
    ``shift``: one ``(dy, dx)`` for all images, or a ``(N, 2)`` integer tensor, one per image.
    Positive ``dy`` moves down, positive ``dx`` right. The image must stay inside the canvas."""
    N, _, h, w = images.shape
    check(canvas >= max(h, w), "canvas", f"at least as large as the images ({h}x{w})", canvas)
    shifts = torch.as_tensor(shift, dtype=torch.long)
    shifts = shifts.expand(N, 2) if shifts.shape == (2,) else shifts  # (N, 2)
    top, left = (canvas - h) // 2, (canvas - w) // 2
    ys, xs = top + shifts[:, 0], left + shifts[:, 1]
    if ys.min() < 0 or xs.min() < 0 or (ys + h).max() > canvas or (xs + w).max() > canvas:
        raise ValueError(f"a shift of up to {shifts.abs().max().item()} pixels moves a {h}x{w} image off the "
                         f"{canvas}x{canvas} canvas (at most {min(top, left)} fits)")
    out = images.new_zeros(N, images.shape[1], canvas, canvas)
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
        out[i, :, y:y + h, x:x + w] = images[i]
    return out


@checked
@dataclass(frozen=True)
class CanvasSplit:
    """Enlarged digits ``(N, 1, s, s)`` (not yet placed) with labels ``(N,)``, split three ways."""

    X_train: Float[Tensor, "N 1 s s"]
    y_train: Int[Tensor, "N"]
    X_val: Float[Tensor, "V 1 s s"]
    y_val: Int[Tensor, "V"]
    X_test: Float[Tensor, "M 1 s s"]
    y_test: Int[Tensor, "M"]


@checked
def canvas_digits(scale: PosInt = 2, val_size: IntIn(10, 1000) = 300, seed: Seed = 0) -> CanvasSplit:
    """The book's digits split (1,347 train, 450 test) with ``val_size`` training images held
    out (stratified, seeded), each image enlarged ``scale`` times: place them with :func:`place`."""
    from sklearn.model_selection import train_test_split

    split = load_digits_split()
    idx = torch.arange(len(split.y_train)).numpy()
    tr, va = train_test_split(idx, test_size=val_size, random_state=seed, stratify=split.y_train.numpy())
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    big = lambda x: enlarge(x, scale)  # noqa: E731
    return CanvasSplit(big(split.X_train[tr]), split.y_train[tr], big(split.X_train[va]), split.y_train[va],
                       big(split.X_test), split.y_test)
