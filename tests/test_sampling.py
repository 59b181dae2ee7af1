import pytest
import torch
from transformers import TopKLogitsWarper, TopPLogitsWarper

from utils.sampling import filter_distribution, generate, sample_next


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold = filter_distribution(logits, temperature=0.5).after
    hot = filter_distribution(logits, temperature=2.0).after
    assert cold[0] > logits.softmax(-1)[0] > hot[0]
    torch.testing.assert_close(filter_distribution(logits).after, logits.softmax(-1))


def test_top_k_and_top_p_match_transformers_warpers():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 50, generator=g) * 2
    for k, p in ((5, None), (None, 0.7), (10, 0.5), (1, None), (None, 0.05)):
        ours = filter_distribution(logits, top_k=k, top_p=p).after
        ref = logits.clone()
        if k is not None:
            ref = TopKLogitsWarper(k)(None, ref)
        if p is not None:
            ref = TopPLogitsWarper(p)(None, ref)
        torch.testing.assert_close(ours, ref.softmax(-1))


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    after = filter_distribution(probs.log(), top_p=0.8).after
    torch.testing.assert_close(after, torch.tensor([0.625, 0.375, 0.0, 0.0]))
    after = filter_distribution(probs.log(), top_p=0.81).after
    assert (after > 0).sum() == 3


def test_bad_arguments_are_named():
    logits = torch.zeros(1, 5)
    with pytest.raises(ValueError, match="temperature"):
        filter_distribution(logits, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        filter_distribution(logits, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        filter_distribution(logits, top_p=1.5)
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        sample_next(torch.zeros(5))


def test_generate_greedy_and_sampled_lengths_and_crop():
    V = 7
    seen = []

    def model(idx):  # always predicts (last token + 1) mod V
        seen.append(idx.shape[1])
        return torch.nn.functional.one_hot((idx + 1) % V, V).float() * 10

    out = generate(model, torch.tensor([[0]]), 5, block_size=3, greedy=True)
    assert out.tolist() == [[0, 1, 2, 3, 4, 5]] and max(seen) == 3
    g = torch.Generator().manual_seed(0)
    out = generate(model, torch.zeros(2, 1, dtype=torch.long), 4, block_size=8, top_k=1, generator=g)
    assert out.shape == (2, 5) and out[0].tolist() == [0, 1, 2, 3, 4]
