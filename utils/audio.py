"""Synthetic audio-like signals, the short-time Fourier transform and a small 1-D CNN.

Explained in chapter 5.3 ("Speech, by proxy"). **This is a proxy for speech, not speech**:
the classes are tones, chirps, noise bursts and amplitude-modulated tones generated from a
seed, so the chapter can teach spectrograms and 1-D convolutions offline in seconds. Real
speech recognition needs hours of recorded speech and far larger models.

Shapes: B signals, L samples per signal, F frequency bins (``n_fft // 2 + 1``), T frames
(``1 + (L - n_fft) // hop_length``), C channels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from utils._validate import Float, IntIn, NonNegFloat, NonNegInt, OneOf, PosFloat, PosInt, Seed, Tensor, check, checked

__all__ = ["SIGNAL_CLASSES", "make_signal", "make_audio_dataset", "stft", "spectrogram", "bin_frequency",
           "SpectrogramCNN"]

SIGNAL_CLASSES = ("tone", "chirp", "noise burst", "AM tone")


def _positive_int(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


@checked
def make_signal(kind: OneOf(*SIGNAL_CLASSES), rng: np.random.Generator, *, sample_rate: PosInt = 8000,
                num_samples: IntIn(16) = 2000) -> np.ndarray:
    """One clean signal ``(L,)`` of class ``kind`` with random parameters drawn from ``rng``.

    - ``tone``: a sine of constant frequency f in [300, 3000] Hz;
    - ``chirp``: a linear sweep between two frequencies in [300, 3000] Hz at least 800 Hz
      apart, up or down (phase ``2π (f0 t + (f1 - f0) t² / (2 τ))`` for duration τ);
    - ``noise burst``: white noise during a random 20-50 % of the signal, silence elsewhere;
    - ``AM tone``: a tone whose amplitude is modulated, ``(1 + 0.9 sin 2π f_m t) / 1.9``,
      with f_m in [8, 20] Hz, so it differs from ``tone`` only in time, not in its average spectrum.
    Amplitudes are random in [0.5, 1].
    """
    if kind not in SIGNAL_CLASSES:
        raise ValueError(f"kind must be one of {SIGNAL_CLASSES}, got {kind!r}")
    sample_rate = _positive_int("sample_rate", sample_rate)
    L = _positive_int("num_samples", num_samples, 16)
    t = np.arange(L) / sample_rate  # (L,) seconds
    amp = rng.uniform(0.5, 1.0)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "tone":
        return amp * np.sin(2 * np.pi * rng.uniform(300, 3000) * t + phase)
    if kind == "chirp":
        f0 = rng.uniform(300, 2200)
        f1 = rng.uniform(f0 + 800, 3000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0  # a downward sweep
        tau = L / sample_rate
        return amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * tau)) + phase)
    if kind == "noise burst":
        width = int(L * rng.uniform(0.2, 0.5))
        start = rng.integers(0, L - width + 1)
        out = np.zeros(L)
        out[start:start + width] = amp * rng.standard_normal(width) / 2
        return out
    f_m = rng.uniform(8, 20)
    envelope = (1 + 0.9 * np.sin(2 * np.pi * f_m * t + rng.uniform(0, 2 * np.pi))) / 1.9
    return amp * envelope * np.sin(2 * np.pi * rng.uniform(300, 3000) * t + phase)


@checked
def make_audio_dataset(num_per_class: PosInt, *, sample_rate: PosInt = 8000, num_samples: IntIn(16) = 2000,
                       noise_std: NonNegFloat = 0.3, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A balanced, shuffled data set of synthetic signals with additive white noise.

    Args:
        num_per_class: signals per class (4 classes, see ``SIGNAL_CLASSES``).
        sample_rate: samples per second (default 8 kHz: frequencies up to 4 kHz).
        num_samples: L, samples per signal (default 2,000 = 0.25 s at 8 kHz).
        noise_std: standard deviation of the background noise added to every signal.
        seed: the same arguments always give the same tensors.

    Returns:
        ``X`` ``(N, L)`` float32 and ``y`` ``(N,)`` int64 class indices, ``N = 4 * num_per_class``.
    """
    n = _positive_int("num_per_class", num_per_class)
    if not isinstance(noise_std, (int, float)) or isinstance(noise_std, bool) or noise_std < 0:
        raise ValueError(f"noise_std must be a non-negative number, got {noise_std!r}")
    rng = np.random.default_rng(seed)
    X, y = [], []
    for label, kind in enumerate(SIGNAL_CLASSES):
        for _ in range(n):
            clean = make_signal(kind, rng, sample_rate=sample_rate, num_samples=num_samples)
            X.append(clean + noise_std * rng.standard_normal(clean.shape))
            y.append(label)
    order = rng.permutation(len(y))
    return (torch.tensor(np.stack(X)[order], dtype=torch.float32),  # (N, L)
            torch.tensor(np.array(y)[order], dtype=torch.int64))  # (N,)


@checked
def stft(x: Float[Tensor, "L"] | Float[Tensor, "B L"], n_fft: IntIn(2) = 128, hop_length: PosInt = 64,
         window: Float[Tensor, "n_fft"] | None = None) -> torch.Tensor:
    """Short-time Fourier transform written out: frame, window, real FFT.

    ``X[b, f, t] = Σ_n x[b, t·hop + n] w[n] e^{-2πi f n / n_fft}`` for ``n < n_fft``. Matches
    ``torch.stft(x, n_fft, hop_length, window=window, center=False, return_complex=True)``.

    Args:
        x: ``(L,)`` or ``(B, L)`` real signal(s), ``L >= n_fft``.
        n_fft: frame length (samples per window).
        hop_length: step between frames.
        window: ``(n_fft,)``; default the periodic Hann window ``torch.hann_window(n_fft)``.

    Returns:
        Complex ``(F, T)`` or ``(B, F, T)`` with ``F = n_fft // 2 + 1``, ``T = 1 + (L - n_fft) // hop``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    n_fft = _positive_int("n_fft", n_fft, 2)
    hop_length = _positive_int("hop_length", hop_length)
    if x.ndim not in (1, 2) or x.is_complex():
        raise ValueError(f"x must be a real (L,) or (B, L) signal, got shape {tuple(x.shape)}, dtype {x.dtype}")
    if x.shape[-1] < n_fft:
        raise ValueError(f"x must have at least n_fft = {n_fft} samples, got {x.shape[-1]}")
    if window is None:
        window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    if window.shape != (n_fft,):
        raise ValueError(f"window must have shape ({n_fft},), got {tuple(window.shape)}")
    frames = x.unfold(-1, n_fft, hop_length)  # (B, T, n_fft): frame t starts at t * hop
    spec = torch.fft.rfft(frames * window, dim=-1)  # (B, T, F)
    return spec.transpose(-1, -2)  # (B, F, T), torch.stft's layout


@checked
def spectrogram(x: Float[Tensor, "L"] | Float[Tensor, "B L"], n_fft: IntIn(2) = 128, hop_length: PosInt = 64, *,
                db: bool = True, eps: PosFloat = 1e-10) -> torch.Tensor:
    """Power spectrogram ``|STFT|²`` ``(B, F, T)`` (or ``(F, T)``); with ``db=True``
    ``10 log10(power + eps)`` decibels."""
    power = stft(x, n_fft, hop_length).abs() ** 2  # (B, F, T)
    return 10 * torch.log10(power + eps) if db else power


@checked
def bin_frequency(bin_index: NonNegInt, n_fft: IntIn(2), sample_rate: PosInt) -> float:
    """Centre frequency in Hz of FFT bin ``bin_index``: ``bin_index * sample_rate / n_fft``."""
    check(bin_index <= n_fft // 2, "bin_index", f"at most n_fft // 2 = {n_fft // 2} (the Nyquist bin)", bin_index)
    return bin_index * sample_rate / n_fft


@checked
class SpectrogramCNN(nn.Module):
    """A small 1-D CNN over spectrogram frames: frequency bins are the input channels and the
    convolution slides along time, so a kernel sees the whole spectrum of neighbouring
    frames (3 by default, ``kernel_size`` frames in general). Global average and max pooling over time make it length-independent.

    Input ``(B, F, T)`` log-power spectrogram in dB; output logits ``(B, num_classes)``.
    """

    def __init__(self, n_freq: PosInt = 65, num_classes: IntIn(2) = len(SIGNAL_CLASSES), channels: PosInt = 32,
                 kernel_size: PosInt = 3):
        super().__init__()
        self.n_freq = _positive_int("n_freq", n_freq)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int (keeps T unchanged), got {kernel_size!r}")
        self.norm = nn.BatchNorm1d(n_freq)  # puts dB values on a unit scale per frequency
        self.features = nn.Sequential(
            nn.Conv1d(n_freq, channels, kernel_size, padding=kernel_size // 2), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2), nn.ReLU(),
        )
        self.head = nn.Linear(2 * channels, _positive_int("num_classes", num_classes, 2))

    @checked(dims={"F": "n_freq"})
    def forward(self, spec: Float[Tensor, "B F T"]) -> torch.Tensor:
        if spec.ndim != 3 or spec.shape[1] != self.n_freq:
            raise ValueError(f"spec must be (B, F={self.n_freq}, T), got shape {tuple(spec.shape)}")
        h = self.features(self.norm(spec))  # (B, C, T)
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)  # (B, 2C)
        return self.head(pooled)  # (B, num_classes)
