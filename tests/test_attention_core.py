import pytest
import torch
import torch.nn.functional as F

from utils.attention import causal_mask, scaled_dot_product_attention


def test_matches_torch_sdpa_with_and_without_causal_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))
    out, w = scaled_dot_product_attention(q, k, v, causal_mask(5))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert torch.all(w.triu(1) == 0)


def test_causal_mask_rectangular_aligns_to_the_end():
    m = causal_mask(2, 4)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]


def test_bad_inputs_name_the_argument():
    q = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match=r"k must be a floating-point tensor of shape \(\*B, S, hs\)"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"v must be .*\[S=5 from k\]"):
        scaled_dot_product_attention(q, q, torch.randn(2, 6, 4))
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, q, q, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, q, q, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="q"):
        scaled_dot_product_attention([1.0], q, q)
