"""Data-parallel training as a cluster runs it: one script, started once per device by ``torchrun``.

    torchrun --nproc_per_node=2 -m utils.ddp_train --epochs 3                 # this machine: 2 CPU processes, gloo
    torchrun --nproc_per_node=8 -m utils.ddp_train --epochs 3                 # one server with 8 GPUs: nccl
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 -m utils.ddp_train --epochs 3          # 4 servers: run this on each

The companion of chapter 6, "Distributed training", where :func:`utils.distributed.train_data_parallel`
starts the processes itself. Here ``torchrun`` starts them: it sets ``RANK`` (this process among all),
``LOCAL_RANK`` (among the processes on this server; the GPU to use), ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` in each process's environment, and ``init_process_group`` reads them (``env://``).
The same code runs on CPUs and GPUs; what changes on GPUs is in :func:`setup_distributed` and
:func:`train`:

- backend ``nccl`` (GPU to GPU over NVLink / InfiniBand) instead of ``gloo``;
- ``torch.cuda.set_device(local_rank)`` before any CUDA work, so each process owns one GPU;
- the model and every batch moved to ``cuda:<local_rank>``, and
  ``DistributedDataParallel(model, device_ids=[local_rank])``.

The data are split by ``torch.utils.data.DistributedSampler``: each epoch it shuffles all indices with
the seed ``seed + epoch`` (the same permutation on every rank) and deals rank ``r`` every
``world_size``-th index from position ``r``. ``sampler.set_epoch(epoch)`` must be called at the start of
every epoch; without it every epoch repeats the first epoch's order. With ``drop_last`` and a per-rank
batch of ``B / world_size``, global batch ``k`` of an epoch is exactly ``perm[k B : (k + 1) B]``, so the
run equals :func:`reference_run`, one process on the same global batches (tested, float64, on CPU).

Rank 0 writes ``params.safetensors`` and ``log.json`` (loss per step) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from utils._validate import (Device, Float, Int, NonNegInt, PosFloat, PosInt, Tensor, check, check_ids,
                              checked)
from utils.distributed import DataParallelConfig, make_mlp

__all__ = ["setup_distributed", "epoch_batches", "reference_run", "train", "main"]


@checked
def setup_distributed(timeout_s: PosFloat = 120.0) -> tuple[int, int, int, torch.device]:
    """Join the process group torchrun prepared; returns ``(rank, local_rank, world_size, device)``.

    On a machine with GPUs: backend ``nccl`` and one GPU per process, ``cuda:<local_rank>``. On CPUs:
    backend ``gloo``.
    """
    missing = [k for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not set: start this script with torchrun, e.g. "
                           "torchrun --nproc_per_node=2 -m utils.ddp_train")
    rank, local_rank, world_size = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # before any CUDA work: this process owns GPU local_rank
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))  # env://: RANK, WORLD_SIZE, MASTER_*
    return rank, local_rank, world_size, device


@checked
def epoch_batches(num_samples: PosInt, config: DataParallelConfig, epoch: NonNegInt) -> torch.Tensor:
    """The global batches of one epoch as ``DistributedSampler`` + ``DataLoader`` form them, ``(K, B)``:
    ``perm = randperm(N)`` seeded with ``seed + epoch``, cut into ``K = N // B`` consecutive batches."""
    B = config.global_batch_size
    check(num_samples >= B, "num_samples", f"at least global_batch_size ({B})", num_samples)
    gen = torch.Generator()
    gen.manual_seed(config.seed + epoch)  # DistributedSampler.__iter__ does exactly this
    perm = torch.randperm(num_samples, generator=gen)
    K = num_samples // B
    return perm[: K * B].view(K, B)  # (K, B)


@checked
def reference_run(X: Float[Tensor, "N 64"], y: Int[Tensor, "N"], config: DataParallelConfig, epochs: PosInt
                  ) -> tuple[dict[str, torch.Tensor], list[float]]:
    """One process, each step on a whole global batch (:func:`epoch_batches`): what DDP must reproduce.
    Returns the final parameters and the loss of every step."""
    check_ids("y", y, 10)  # the digits' classes
    check(len(X) >= config.global_batch_size, "X", f"at least global_batch_size = {config.global_batch_size} rows",
          tuple(X.shape))
    dtype = getattr(torch, config.dtype)
    model = make_mlp(config)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    losses = []
    for epoch in range(epochs):
        for idx in epoch_batches(len(X), config, epoch):
            loss = F.cross_entropy(model(X[idx].to(dtype)), y[idx])  # mean over the B examples
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


@checked
def train(X: Float[Tensor, "N 64"], y: Int[Tensor, "N"], config: DataParallelConfig, epochs: PosInt, *,
          rank: NonNegInt, local_rank: NonNegInt, world_size: PosInt, device: Device, set_epoch: bool = True
          ) -> tuple[dict[str, torch.Tensor], list[float], float]:
    """The training loop of one rank. Returns (parameters, global-batch loss per step, loop seconds).

    ``set_epoch=False`` leaves out ``sampler.set_epoch(epoch)`` (the classic bug: every epoch then
    sees the same order)."""
    check(config.global_batch_size % world_size == 0, "world_size",
          f"a divisor of config.global_batch_size ({config.global_batch_size})", world_size)
    check(rank < world_size, "rank", f"below world_size ({world_size})", rank)
    check_ids("y", y, 10)
    device = torch.device(device)
    dtype = getattr(torch, config.dtype)
    dataset = TensorDataset(X.to(dtype), y)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed,
                                 drop_last=True)
    loader = DataLoader(dataset, batch_size=config.global_batch_size // world_size, sampler=sampler,
                        drop_last=True)
    model = make_mlp(config).to(device)  # the same seeded weights on every rank (DDP also broadcasts rank 0's)
    ddp = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=config.lr)
    losses = []
    dist.barrier()
    start = time.perf_counter()
    for epoch in range(epochs):
        if set_epoch:
            sampler.set_epoch(epoch)  # a new shuffle each epoch, the same one on every rank
        for xb, yb in loader:  # (B / world_size, 64), (B / world_size,)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.cross_entropy(ddp(xb), yb)  # mean over this rank's shard
            opt.zero_grad()
            loss.backward()  # DDP all-reduces and averages the gradients here
            opt.step()
            global_loss = loss.detach().clone()
            dist.all_reduce(global_loss)  # for the log only: mean over ranks = loss of the global batch
            losses.append(global_loss.item() / world_size)
    seconds = torch.tensor([time.perf_counter() - start], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    params = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    return params, losses, seconds.item()


@checked
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m utils.ddp_train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--global-batch-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--no-set-epoch", action="store_true", help="leave out sampler.set_epoch (the bug)")
    parser.add_argument("--out", type=Path, default=None, help="rank 0 saves params.safetensors and log.json here")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    rank, local_rank, world_size, device = setup_distributed()
    try:
        from utils.data import load_digits_split

        X, y, _, _ = load_digits_split().flat()  # (1347, 64), (1347,): every rank loads the same data
        config = DataParallelConfig(world_size=world_size, steps=1, global_batch_size=args.global_batch_size,
                                    hidden_size=args.hidden_size, lr=args.lr, seed=args.seed, dtype=args.dtype)
        params, losses, seconds = train(X, y, config, args.epochs, rank=rank, local_rank=local_rank,
                                        world_size=world_size, device=device, set_epoch=not args.no_set_epoch)
        if rank == 0:
            steps_per_epoch = len(losses) // args.epochs
            for e in range(args.epochs):
                part = losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]
                print(f"epoch {e}: mean loss {sum(part) / len(part):.4f} over {len(part)} steps")
            print(f"{world_size} processes, backend {dist.get_backend()}, device {device}: "
                  f"{len(losses)} steps in {seconds:.2f} s")
            if args.out is not None:
                from safetensors.torch import save_file

                args.out.mkdir(parents=True, exist_ok=True)
                save_file(params, str(args.out / "params.safetensors"))
                (args.out / "log.json").write_text(json.dumps(
                    {"losses": losses, "train_seconds": seconds, "world_size": world_size,
                     "backend": dist.get_backend(), "config": vars(args) | {"out": str(args.out)}}))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
