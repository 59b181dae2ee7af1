"""utils.ddp_train: the DDP example started by torchrun (2 CPU processes, gloo, localhost only)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from utils.data import load_digits_split
from utils.ddp_train import epoch_batches, reference_run
from utils.distributed import DataParallelConfig, find_free_port


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def _sampler_batches(n, config, world_size, epoch, *, set_epoch=True):
    """Global batches as DistributedSampler + DataLoader deal them to the ranks, (K, B)."""
    data = TensorDataset(torch.arange(n))
    per_rank = []
    for rank in range(world_size):
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed,
                                     drop_last=True)
        if set_epoch:
            sampler.set_epoch(epoch)
        loader = DataLoader(data, batch_size=config.global_batch_size // world_size, sampler=sampler, drop_last=True)
        per_rank.append([b[0] for b in loader])
    return [torch.cat([per_rank[r][k] for r in range(world_size)]) for k in range(len(per_rank[0]))]


@pytest.mark.parametrize("n, world_size", [(1347, 2), (100, 4), (130, 2)])
def test_epoch_batches_are_what_distributed_sampler_deals(n, world_size):
    config = DataParallelConfig(world_size=world_size, global_batch_size=16)
    for epoch in (0, 1):
        ours = epoch_batches(n, config, epoch)  # (K, B)
        theirs = _sampler_batches(n, config, world_size, epoch)
        assert ours.shape == (len(theirs), 16) == (n // 16, 16)
        for a, b in zip(ours, theirs):  # same examples in each global batch (ranks interleave them)
            assert sorted(a.tolist()) == sorted(b.tolist())
    # set_epoch matters: without it, epoch 1 repeats epoch 0's order
    again = _sampler_batches(n, config, world_size, 1, set_epoch=False)
    assert all(sorted(a.tolist()) == sorted(b.tolist()) for a, b in zip(epoch_batches(n, config, 0), again))
    assert not torch.equal(epoch_batches(n, config, 0), epoch_batches(n, config, 1))


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    X, y, _, _ = load_digits_split().flat()
    epochs = 2
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")  # loopback only, never a real interface
    cmd = _torchrun() + ["--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={find_free_port()}",
                         "-m", "utils.ddp_train", "--epochs", str(epochs), "--global-batch-size", "64",
                         "--hidden-size", "16", "--dtype", "float64", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 processes, backend gloo, device cpu" in proc.stdout
    from safetensors.torch import load_file

    params = load_file(str(out / "params.safetensors"))
    log = json.loads((out / "log.json").read_text())
    config = DataParallelConfig(world_size=2, global_batch_size=64, hidden_size=16, dtype="float64")
    ref_params, ref_losses = reference_run(X, y, config, epochs)
    assert len(log["losses"]) == epochs * (len(X) // 64) == 42
    torch.testing.assert_close(torch.tensor(log["losses"]), torch.tensor(ref_losses), rtol=0, atol=1e-12)
    for name, value in ref_params.items():
        torch.testing.assert_close(params[name], value, rtol=0, atol=1e-12)
    assert ref_losses[-1] < ref_losses[0]  # it trained


def test_without_torchrun_says_how_to_start_it(monkeypatch):
    from utils.ddp_train import setup_distributed

    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="start this script with torchrun"):
        setup_distributed()

