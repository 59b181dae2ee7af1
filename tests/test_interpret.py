import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from utils.conv import DigitsCNN
from utils.interpret import (class_score, gradient_x_input, integrated_gradients, occlusion, randomize_weights,
                             rank_correlation, saliency)


def linear_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()


def smooth_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 4)).double()


def images(B: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(B, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_class_score_gathers_the_target_logit():
    model, x = linear_model(), images()
    logits = model(x)
    torch.testing.assert_close(class_score(model, x, 2), logits[:, 2])
    torch.testing.assert_close(class_score(model, x, torch.tensor([0, 2, 1])), logits[[0, 1, 2], [0, 2, 1]])


def test_saliency_of_a_linear_model_is_its_weight_row():
    model, x = linear_model(), images()
    target = torch.tensor([0, 2, 1])
    expected = model[1].weight[target].reshape(3, 1, 4, 4)
    torch.testing.assert_close(saliency(model, x, target), expected)
    torch.testing.assert_close(gradient_x_input(model, x, target), x * expected)


def test_saliency_matches_per_sample_autograd_for_a_cnn():
    model, x = smooth_cnn(), images()
    got = saliency(model, x, 1)
    for b in range(3):
        xb = x[b:b + 1].clone().requires_grad_(True)
        model(xb)[0, 1].backward()
        torch.testing.assert_close(got[b:b + 1], xb.grad)


def test_integrated_gradients_is_exact_for_a_linear_model():
    model, x = linear_model(), images()
    # f is linear, so the gradient is constant along the path: IG = (x - x') * w, whatever the number of steps
    torch.testing.assert_close(integrated_gradients(model, x, 1, steps=1), gradient_x_input(model, x, 1))
    baseline = torch.full_like(x, 0.5)
    torch.testing.assert_close(integrated_gradients(model, x, 1, baseline, steps=3),
                               (x - baseline) * saliency(model, x, 1))


@pytest.mark.parametrize("baseline", [0.0, 0.3])
def test_integrated_gradients_completeness_on_a_nonlinear_model(baseline):
    model, x = smooth_cnn(), images()
    target = torch.tensor([0, 3, 1])
    attributions = integrated_gradients(model, x, target, baseline, steps=256)
    expected = class_score(model, x, target) - class_score(model, torch.full_like(x, baseline), target)
    torch.testing.assert_close(attributions.flatten(1).sum(1), expected.detach(), atol=1e-4, rtol=1e-4)
    coarse = integrated_gradients(model, x, target, baseline, steps=4).flatten(1).sum(1)
    fine_gap = (attributions.flatten(1).sum(1) - expected).abs().max()
    assert fine_gap < (coarse - expected).abs().max()  # more steps, smaller integration error


def test_integrated_gradients_chunking_does_not_change_the_result():
    model, x = smooth_cnn(), images()
    torch.testing.assert_close(integrated_gradients(model, x, 2, steps=10, max_batch=4),
                               integrated_gradients(model, x, 2, steps=10))


def test_occlusion_with_single_pixels_is_gradient_x_input_for_a_linear_model():
    model, x = linear_model(), images()
    # covering pixel p with 0 removes exactly w_p * x_p from a linear score
    occ = occlusion(model, x, 2, window=1)
    assert occ.shape == (3, 4, 4)
    torch.testing.assert_close(occ, gradient_x_input(model, x, 2)[:, 0])


def test_occlusion_averages_the_windows_that_cover_a_pixel():
    model, x = linear_model(), images(B=1)
    occ = occlusion(model, x, 0, window=2, stride=2)  # non-overlapping windows: each pixel gets its window's drop
    contrib = gradient_x_input(model, x, 0)[0, 0]  # (4, 4)
    for i in (0, 2):
        for j in (0, 2):
            assert torch.allclose(occ[0, i:i + 2, j:j + 2], contrib[i:i + 2, j:j + 2].sum().expand(2, 2))
    occ = occlusion(model, x, 0, window=2, stride=1)  # corner pixel: covered by one window only
    assert torch.allclose(occ[0, 0, 0], contrib[:2, :2].sum())


def test_randomize_weights_top_layers_only_and_leaves_rng_and_original_alone():
    model = DigitsCNN()
    state = torch.random.get_rng_state()
    rand_top = randomize_weights(model, top=1, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(rand_top.features[0].weight, model.features[0].weight)
    assert not torch.equal(rand_top.classifier[-1].weight, model.classifier[-1].weight)
    rand_all = randomize_weights(model, seed=3)
    assert all(not torch.equal(p, q) for p, q in zip(rand_all.parameters(), model.parameters()) if p.numel() > 1)
    torch.testing.assert_close(rand_all.classifier[-1].weight, randomize_weights(model, seed=3).classifier[-1].weight)
    with pytest.raises(ValueError, match="top"):
        randomize_weights(model, top=5)


def test_rank_correlation_matches_scipy_with_ties():
    torch.manual_seed(0)
    a = torch.randn(4, 1, 5, 5)
    b = a + 0.5 * torch.randn(4, 1, 5, 5)
    a[:, :, 0] = 0.0  # ties
    rho = rank_correlation(a, b)
    for i in range(4):
        assert rho[i].item() == pytest.approx(spearmanr(a[i].abs().flatten(), b[i].abs().flatten())[0])
    torch.testing.assert_close(rank_correlation(a, a, absolute=False), torch.ones(4, dtype=torch.float64))
    assert rank_correlation(a, -a, absolute=False).max().item() == pytest.approx(-1.0)


@pytest.mark.parametrize("call, word", [
    (lambda: saliency(linear_model(), images(), torch.tensor([0, 1])), "target"),
    (lambda: saliency(linear_model(), images(), 5), "class indices"),
    (lambda: occlusion(linear_model(), images()[:, 0], 0), "x must be a floating-point tensor of shape \\(B, C, H, W\\)"),
    (lambda: occlusion(linear_model(), images(), 0, window=5), "window"),
    (lambda: integrated_gradients(linear_model(), images(), 0, steps=0), "steps"),
    (lambda: integrated_gradients(linear_model(), images(), 0, torch.zeros(2, 1, 4, 4)), "baseline"),
    (lambda: rank_correlation(torch.zeros(2, 3), torch.zeros(2, 4)), "same shape"),
])
def test_bad_input_is_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()
