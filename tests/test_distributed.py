import pytest
import torch
import torch.nn.functional as F

from utils.data import load_digits_split
from utils.distributed import (ADAM_MIXED_PRECISION_BYTES, DataParallelConfig, all_reduce_demo, column_parallel_linear,
                               global_batch_indices, gpipe_schedule, pipeline_bubble_fraction, ring_all_reduce_bytes,
                               row_parallel_linear, shard_indices, train_data_parallel, train_single_process,
                               zero_memory_per_device)


def test_two_process_ddp_equals_single_process_training():
    X, y, _, _ = load_digits_split().flat()
    config = DataParallelConfig(world_size=2, steps=8, global_batch_size=32, hidden_size=16, dtype="float64")
    ref = train_single_process(X, y, config)
    ddp = train_data_parallel(X, y, config)
    assert ref.params.keys() == ddp.params.keys()
    for name in ref.params:
        torch.testing.assert_close(ddp.params[name], ref.params[name], rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.tensor(ddp.losses), torch.tensor(ref.losses), rtol=0, atol=1e-12)
    assert ref.losses[-1] < ref.losses[0]  # it did train
    # the parameters really moved: comparing two untrained copies would prove nothing
    untrained = train_single_process(X, y, DataParallelConfig(steps=1, lr=0.0, hidden_size=16))
    assert (untrained.params["0.weight"] - ref.params["0.weight"]).abs().max() > 1e-3


def test_all_reduce_sums_over_ranks():
    out = all_reduce_demo(world_size=2, sizes=(10,), repeats=1)
    assert [r["before"] for r in out] == [[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]]
    assert all(r["after"] == [10.0, 12.0, 14.0, 16.0] for r in out)
    assert all(r["seconds"][10] > 0 for r in out)


def test_shards_partition_every_global_batch():
    config = DataParallelConfig(world_size=4, steps=50, global_batch_size=16)
    batches = global_batch_indices(100, config)
    assert batches.shape == (50, 16)
    assert len(set(batches[0].tolist())) == 16
    for batch in batches:
        shards = [shard_indices(batch, r, 4) for r in range(4)]
        assert all(s.shape == (4,) for s in shards)
        assert sorted(torch.cat(shards).tolist()) == sorted(batch.tolist())
    with pytest.raises(ValueError, match="rank"):
        shard_indices(batches[0], 4, 4)


def test_config_validation():
    with pytest.raises(ValueError, match="divisible by world_size"):
        DataParallelConfig(world_size=3, global_batch_size=64)
    with pytest.raises(ValueError, match="dtype"):
        DataParallelConfig(dtype="float16")
    with pytest.raises(ValueError, match="steps"):
        DataParallelConfig(steps=0)
    with pytest.raises(ValueError, match=r"X must be a floating-point tensor of shape \(N, 64\)"):
        train_single_process(torch.zeros(10, 8, 8), torch.zeros(10, dtype=torch.long), DataParallelConfig())


@pytest.mark.parametrize("num_shards", [1, 2, 4])
@pytest.mark.parametrize("with_bias", [True, False])
def test_tensor_parallel_linear_equals_full_linear(num_shards, with_bias):
    torch.manual_seed(0)
    x = torch.randn(5, 8, dtype=torch.float64)
    weight = torch.randn(12, 8, dtype=torch.float64)
    bias = torch.randn(12, dtype=torch.float64) if with_bias else None
    full = F.linear(x, weight, bias)
    y_col, parts_col = column_parallel_linear(x, weight, bias, num_shards)
    y_row, parts_row = row_parallel_linear(x, weight, bias, num_shards)
    torch.testing.assert_close(y_col, full)
    torch.testing.assert_close(y_row, full)
    assert len(parts_col) == len(parts_row) == num_shards
    assert parts_col[0].shape == (5, 12 // num_shards) and parts_row[0].shape == (5, 12)
    with pytest.raises(ValueError, match="num_shards"):
        column_parallel_linear(x, weight, bias, 5)
    with pytest.raises(ValueError, match=r"weight must be .* \[C_in=3 from x\]"):
        row_parallel_linear(x[:, :3], weight, bias, 1)


@pytest.mark.parametrize("p, m", [(1, 1), (2, 1), (4, 4), (4, 16), (3, 7)])
def test_gpipe_bubble_matches_the_schedule(p, m):
    grid = gpipe_schedule(p, m)
    assert grid.shape == (p, 2 * (m + p - 1))
    for s in range(p):  # every stage runs each micro-batch once forward and once backward
        assert sorted(grid[s][grid[s] > 0].tolist()) == list(range(1, m + 1))
        assert sorted((-grid[s][grid[s] < 0]).tolist()) == list(range(1, m + 1))
        forward_slot = {j: t for t, j in enumerate(grid[s]) if j > 0}
        if s > 0:  # stage s runs micro-batch j after stage s-1 did
            prev = {j: t for t, j in enumerate(grid[s - 1]) if j > 0}
            assert all(forward_slot[j] > prev[j] for j in forward_slot)
    assert pipeline_bubble_fraction(p, m) == pytest.approx((grid == 0).mean())
    with pytest.raises(ValueError, match="num_microbatches"):
        gpipe_schedule(2, 0)


def test_memory_arithmetic():
    assert sum(ADAM_MIXED_PRECISION_BYTES.values()) == 16
    psi = 175e9
    assert zero_memory_per_device(psi, 1, 0) == pytest.approx(2.8e12)
    assert zero_memory_per_device(psi, 64, 0) == pytest.approx(2.8e12)  # replicated
    assert zero_memory_per_device(psi, 64, 1) == pytest.approx(psi * (4 + 12 / 64))
    assert zero_memory_per_device(psi, 64, 2) == pytest.approx(psi * (2 + 14 / 64))
    assert zero_memory_per_device(psi, 64, 3) == pytest.approx(psi * 16 / 64)
    assert ring_all_reduce_bytes(100.0, 1) == 0.0
    assert ring_all_reduce_bytes(100.0, 2) == pytest.approx(100.0)
    assert ring_all_reduce_bytes(100.0, 1000) == pytest.approx(199.8)
    with pytest.raises(ValueError, match="stage"):
        zero_memory_per_device(psi, 8, 4)
