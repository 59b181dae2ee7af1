"""Tests of utils.audio: the from-scratch STFT against torch.stft (float64, values and
gradients), the synthetic data set, the spectrogram's frequency axis and the 1-D CNN."""

import numpy as np
import pytest
import torch

from utils.audio import (SIGNAL_CLASSES, SpectrogramCNN, bin_frequency, make_audio_dataset, make_signal,
                         spectrogram, stft)


@pytest.mark.parametrize("n_fft, hop, L", [(128, 64, 2000), (64, 16, 301), (32, 32, 32)])
def test_stft_matches_torch_values_and_gradients(n_fft, hop, L):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, L, generator=g, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    ours = stft(x, n_fft, hop)
    ref = torch.stft(x_ref, n_fft, hop, window=window, center=False, return_complex=True)
    assert ours.shape == ref.shape == (3, n_fft // 2 + 1, 1 + (L - n_fft) // hop)
    torch.testing.assert_close(ours, ref)
    weights = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    (ours.abs() ** 2 * weights).sum().backward()
    (ref.abs() ** 2 * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_stft_single_signal_and_custom_window():
    x = torch.randn(256, dtype=torch.float64)
    w = torch.ones(64, dtype=torch.float64)
    torch.testing.assert_close(stft(x, 64, 32, window=w),
                               torch.stft(x, 64, 32, window=w, center=False, return_complex=True))


def test_tone_peaks_at_its_frequency_bin():
    sr, n_fft, f = 8000, 128, 1000.0  # 1000 Hz = bin 16 exactly (8000 / 128 = 62.5 Hz per bin)
    t = torch.arange(2000, dtype=torch.float64) / sr
    spec = spectrogram(torch.sin(2 * np.pi * f * t), n_fft, 64, db=False)  # (F, T)
    peak = int(spec.mean(dim=1).argmax())
    assert peak == 16 and bin_frequency(peak, n_fft, sr) == f


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: stft(np.zeros(300)), TypeError, "x must be a floating-point tensor .*, got numpy array"),
    (lambda: stft(torch.zeros(2, 3, 300)), ValueError, r"x must be a floating-point tensor of shape \(L,\) or .* \(B, L\), got float32 tensor of shape \(2, 3, 300\)"),
    (lambda: stft(torch.zeros(100), n_fft=128), ValueError, "at least n_fft = 128 samples, got 100"),
    (lambda: stft(torch.zeros(300), hop_length=0), ValueError, "hop_length must be a positive int, got 0"),
    (lambda: stft(torch.zeros(300), n_fft=64.0), TypeError, r"n_fft must be an int in \[2, inf\), got 64.0"),
    (lambda: stft(torch.zeros(300), window=torch.ones(10)), ValueError, r"window must have shape \(128,\), got \(10,\)"),
])
def test_stft_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_dataset_is_balanced_shuffled_and_deterministic():
    X, y = make_audio_dataset(10, seed=3)
    assert X.shape == (40, 2000) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert y.bincount().tolist() == [10] * len(SIGNAL_CLASSES)
    assert not torch.equal(y, y.sort().values)  # shuffled
    X2, y2 = make_audio_dataset(10, seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(X, make_audio_dataset(10, seed=4)[0])


def test_signal_classes_have_their_defining_property():
    rng = np.random.default_rng(0)
    burst = make_signal("noise burst", rng)
    silent = np.mean(burst == 0)
    assert 0.5 <= silent <= 0.8 + 1e-9  # active during 20-50 % of the samples
    spec = spectrogram(torch.tensor(make_signal("chirp", rng)), db=False)  # (F, T)
    peaks = spec.argmax(dim=0)  # loudest bin per frame
    assert abs(int(peaks[-1]) - int(peaks[0])) >= 10  # the sweep moves >= 800 Hz = 12.8 bins
    tone = spectrogram(torch.tensor(make_signal("tone", rng)), db=False).argmax(dim=0)
    assert int(tone.max() - tone.min()) == 0  # a steady tone stays in one bin


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: make_signal("speech", np.random.default_rng(0)), ValueError, "kind must be one of"),
    (lambda: make_audio_dataset(0), ValueError, "num_per_class must be a positive int, got 0"),
    (lambda: make_audio_dataset(2, noise_std=-1.0), ValueError, "noise_std must be a non-negative finite number"),
])
def test_dataset_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_spectrogram_cnn_shapes_and_length_independence():
    torch.manual_seed(0)
    model = SpectrogramCNN(n_freq=65, num_classes=4, channels=8).eval()
    assert model(torch.randn(5, 65, 30)).shape == (5, 4)
    assert model(torch.randn(2, 65, 11)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"spec must be .* \(B, F, T\) = \(5, 65, T\), got float32 tensor of shape \(5, 64, 30\)"):
        model(torch.randn(5, 64, 30))
    with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
        SpectrogramCNN(kernel_size=4)
    assert SpectrogramCNN(kernel_size=5, channels=8)(torch.randn(2, 65, 7)).shape == (2, 4)


def test_spectrogram_cnn_learns_the_proxy_task():
    from torch.utils.data import DataLoader, TensorDataset

    from utils.training import evaluate, fit

    torch.manual_seed(0)
    X, y = make_audio_dataset(40, seed=0)
    Xte, yte = make_audio_dataset(20, seed=1)
    train = DataLoader(TensorDataset(spectrogram(X), y), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    model = SpectrogramCNN(channels=16)
    fit(model, train, epochs=12, lr=3e-3, progress=False)
    _, acc = evaluate(model, [(spectrogram(Xte), yte)])
    assert acc >= 0.6  # chance is 0.25
