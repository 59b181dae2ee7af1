import math

import numpy as np
import pytest
import torch

from utils.scaling import (KNOWN_MODELS, CharMLP, CharMLPConfig, chinchilla_optimal, count_params, estimate_cost,
                           evaluate_char_lm, fit_power_law, gpu_hours, inference_flops_per_token, lm_windows,
                           matmul_flops_per_second, train_char_lm, training_days, training_flops)
from utils.text_data import char_lm_split


def expected_params(V, K, E, H, L):
    hidden = (K * E * H + H) + (L - 1) * (H * H + H)
    return {"total": V * E + hidden + H * V + V, "non_embedding": hidden + H * V + V}


@pytest.mark.parametrize("H, L", [(8, 1), (16, 2), (32, 3)])
def test_char_mlp_shapes_and_param_count_formula(H, L):
    cfg = CharMLPConfig(vocab_size=11, context_size=5, embed_dim=3, hidden_size=H, num_layers=L)
    model = CharMLP(cfg)
    logits = model(torch.randint(0, 11, (4, 5)))
    assert logits.shape == (4, 11)
    want = expected_params(11, 5, 3, H, L)
    assert count_params(model) == want["total"]
    assert count_params(model, non_embedding=True) == want["non_embedding"]
    assert count_params(model) == sum(p.numel() for p in model.parameters())


def test_char_mlp_rejects_bad_config_and_input():
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        CharMLP(CharMLPConfig(vocab_size=5, hidden_size=0))
    model = CharMLP(CharMLPConfig(vocab_size=5, context_size=4))
    with pytest.raises(ValueError, match=r"\(B, K\) = \(2, 4\)"):
        model(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="idx must be an int64 tensor"):
        model(torch.zeros(2, 4))
    with pytest.raises(TypeError, match="nn.Module"):
        count_params("model")


def test_lm_windows_are_every_window_with_its_next_id():
    data = torch.arange(10)
    X, y = lm_windows(data, 3)
    assert X.shape == (7, 3) and y.shape == (7,)
    assert X[0].tolist() == [0, 1, 2] and y[0].item() == 3
    assert X[-1].tolist() == [6, 7, 8] and y[-1].item() == 9
    with pytest.raises(ValueError, match="need more than context_size"):
        lm_windows(data[:3], 3)


def test_training_lowers_the_validation_loss_and_is_deterministic():
    split = char_lm_split()
    cfg = CharMLPConfig(vocab_size=len(split.vocab), context_size=8, embed_dim=4, hidden_size=16, num_layers=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = CharMLP(cfg)
        X, y = lm_windows(split.val, 8)
        before = evaluate_char_lm(model, X, y)
        runs.append(train_char_lm(model, split.train[:5000], split.val[:2000], steps=40, batch_size=32, eval_every=20))
    run = runs[0]
    assert math.isclose(before, math.log(len(split.vocab)), rel_tol=0.05)  # untrained ~ uniform guess
    assert run.tokens == [640, 1280]
    assert run.val_loss[-1] < before - 1.0
    assert run.best_val_loss == min(run.val_loss)
    assert run.n_params == count_params(model, non_embedding=True)
    assert runs[0].val_loss == runs[1].val_loss
    with pytest.raises(ValueError, match="steps"):
        train_char_lm(model, split.train, split.val, steps=0)


def test_fit_power_law_recovers_a_known_exponent():
    x = np.logspace(3, 6, 8)
    fit = fit_power_law(x, 5.0 * x**-0.3)
    assert fit.alpha == pytest.approx(0.3, abs=1e-9) and fit.a == pytest.approx(5.0, rel=1e-8)
    assert fit.c == 0.0 and fit.r2 == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = 5.0 * x**-0.3 * np.exp(rng.normal(0, 0.01, x.shape))
    fit = fit_power_law(x, noisy)
    assert fit.alpha == pytest.approx(0.3, abs=0.02) and 0.95 < fit.r2 < 1.0
    np.testing.assert_allclose(fit.predict(x), fit.a * x**-fit.alpha)


def test_fit_power_law_with_an_irreducible_term():
    x = np.logspace(3, 8, 10)
    y = 1.5 + 8.0 * x**-0.4
    fit = fit_power_law(x, y, irreducible=True)
    assert fit.alpha == pytest.approx(0.4, abs=1e-4) and fit.c == pytest.approx(1.5, abs=1e-4)
    assert fit.a == pytest.approx(8.0, rel=1e-3) and fit.r2 > 0.9999
    plain = fit_power_law(x, y)  # a pure power law bends the exponent down when there is a floor
    assert plain.alpha < 0.2


@pytest.mark.parametrize("x, y, kw, match", [
    ([1, 2, 3], [1, 2], {}, "equal length"),
    ([1, 2], [1, 2], {}, "at least 3"),
    ([1, 2, 3], [1, 2, 3], {"irreducible": True}, "at least 4"),
    ([1, 0, 3], [1, 2, 3], {}, "positive"),
])
def test_fit_power_law_rejects_bad_input(x, y, kw, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y, **kw)


def test_flop_rules_and_gpt3_matches_the_paper():
    assert training_flops(10, 3) == 180.0
    assert inference_flops_per_token(7) == 14.0
    gpt3 = next(m for m in KNOWN_MODELS if m.name.startswith("GPT-3"))
    assert training_flops(gpt3.n_params, gpt3.n_tokens) == pytest.approx(gpt3.reported_flops, rel=0.01)
    assert all(m.source for m in KNOWN_MODELS)
    assert gpu_hours(3600e12, 1e12, 0.5) == pytest.approx(2.0)
    assert training_days(24 * 3600e12, 2, 1e12, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("call, match", [
    (lambda: training_flops(0, 1), "n_params"),
    (lambda: training_flops(1, -5), "n_tokens"),
    (lambda: inference_flops_per_token(float("nan")), "n_params"),
    (lambda: training_days(1e20, 0, 1e12, 0.5), "n_gpus"),
    (lambda: training_days(1e20, 8, 1e12, 1.5), "mfu"),
    (lambda: gpu_hours(1e20, -1, 0.5), "peak_flops"),
    (lambda: chinchilla_optimal(0), "compute_flops"),
])
def test_non_positive_inputs_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    with pytest.raises(TypeError, match="n_params"):
        training_flops("1e9", 1)


def test_chinchilla_optimal_and_cost_estimate():
    n, d = chinchilla_optimal(6 * 20 * 1e18)
    assert n == pytest.approx(1e9) and d == pytest.approx(20e9)
    assert training_flops(n, d) == pytest.approx(6 * 20 * 1e18)
    est = estimate_cost(1e9, 20e9, peak_flops=1e14, mfu=0.5, n_gpus=10, price_per_gpu_hour=2.0)
    assert est.train_flops == pytest.approx(1.2e20)
    assert est.gpu_hours == pytest.approx(1.2e20 / 5e13 / 3600)
    assert est.days == pytest.approx(est.gpu_hours / 10 / 24)
    assert est.train_cost == pytest.approx(est.gpu_hours * 2.0)
    assert est.inference_cost_per_million_tokens == pytest.approx(2e9 * 1e6 / 5e13 / 3600 * 2.0)
    with pytest.raises(ValueError, match="price_per_gpu_hour"):
        estimate_cost(1e9, 20e9, peak_flops=1e14, mfu=0.5, n_gpus=10, price_per_gpu_hour=0)


def test_matmul_throughput_is_positive():
    assert matmul_flops_per_second(64, 2) > 1e6
    with pytest.raises(ValueError, match="n must be a positive int"):
        matmul_flops_per_second(0)
