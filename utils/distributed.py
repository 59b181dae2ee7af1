"""Distributed training on one machine: data parallelism for real, the other kinds in arithmetic.

Explained in chapter 6, "Distributed training". Three ideas, each small enough to check:

1. **Data parallelism** with ``torch.distributed`` (gloo backend, CPU, localhost only):
   :func:`train_data_parallel` launches ``world_size`` processes with ``torch.multiprocessing``;
   each wraps the same MLP in ``DistributedDataParallel`` and takes its shard of every global
   batch. DDP all-reduces (averages) the gradients, and the mean over ranks of the local mean
   losses' gradients *is* the gradient of the mean loss over the global batch, so the result
   equals :func:`train_single_process` on the same global batches (tested, float64).
   The worker functions live here, not in a notebook, because the ``spawn`` start method
   needs them importable from a module.
2. **Tensor parallelism** (Megatron-LM style): :func:`column_parallel_linear` and
   :func:`row_parallel_linear` split one ``nn.Linear`` across shards in one process.
3. **Pipeline parallelism** and **ZeRO** as arithmetic: :func:`gpipe_schedule`,
   :func:`pipeline_bubble_fraction`, :func:`zero_memory_per_device`.

Shapes: B batch, C_in/C_out features, n shards, p pipeline stages, m micro-batches.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils._validate import (Float, Int, NonNegFloat, NonNegInt, OneOf, PosFloat, PosInt, Seed, Tensor, check_ids,
                             checked)

__all__ = [
    "DataParallelConfig",
    "TrainResult",
    "find_free_port",
    "make_mlp",
    "global_batch_indices",
    "shard_indices",
    "train_single_process",
    "train_data_parallel",
    "all_reduce_demo",
    "ring_all_reduce_bytes",
    "column_parallel_linear",
    "row_parallel_linear",
    "gpipe_schedule",
    "pipeline_bubble_fraction",
    "ADAM_MIXED_PRECISION_BYTES",
    "zero_memory_per_device",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@checked
@dataclass(frozen=True)
class DataParallelConfig:
    """A tiny data-parallel run: an MLP on flattened 8x8 digits, plain SGD."""

    world_size: PosInt = 2  # number of processes (ranks); 1 is allowed
    steps: PosInt = 60  # optimizer steps, each on one global batch
    global_batch_size: PosInt = 64  # B, split evenly over the ranks: must be divisible by world_size
    hidden_size: PosInt = 32  # width of the MLP's hidden layer
    lr: NonNegFloat = 0.5  # SGD learning rate (0 leaves the weights as they are)
    seed: Seed = 0  # seeds the initial weights and the batch order
    dtype: OneOf("float32", "float64") = "float64"  # "float64" makes DDP and one process agree to ~1e-15

    def __post_init__(self) -> None:
        for name in ("world_size", "steps", "global_batch_size", "hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.global_batch_size % self.world_size:
            raise ValueError(f"global_batch_size ({self.global_batch_size}) must be divisible by "
                             f"world_size ({self.world_size})")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")


@checked
@dataclass
class TrainResult:
    """What a run returns: final parameters, the global-batch loss per step, timings."""

    params: dict[str, torch.Tensor]
    losses: list[float]  # mean loss over each global batch, before the step
    train_seconds: float  # wall time of the training loop (slowest rank), without start-up
    total_seconds: float = 0.0  # including process start-up and process-group creation
    extra: dict = field(default_factory=dict)


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@checked
def make_mlp(config: DataParallelConfig) -> nn.Sequential:
    """The model of every run: 64 -> hidden_size -> ReLU -> 10, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    return nn.Sequential(nn.Linear(64, config.hidden_size), nn.ReLU(),
                         nn.Linear(config.hidden_size, 10)).to(_DTYPES[config.dtype])


@checked
def global_batch_indices(num_samples: PosInt, config: DataParallelConfig) -> torch.Tensor:
    """Row indices of every global batch, ``(steps, B)``: one shuffle per epoch, last partial batch dropped."""
    B = config.global_batch_size
    if num_samples < B:
        raise ValueError(f"num_samples ({num_samples}) must be at least global_batch_size ({B})")
    gen = torch.Generator().manual_seed(config.seed)
    per_epoch = num_samples // B
    batches = []
    while len(batches) < config.steps:
        perm = torch.randperm(num_samples, generator=gen)
        batches += list(perm[: per_epoch * B].view(per_epoch, B))
    return torch.stack(batches[: config.steps])  # (steps, B)


@checked
def shard_indices(batch: Int[Tensor, "B"], rank: NonNegInt, world_size: PosInt) -> torch.Tensor:
    """Rank ``rank``'s share of one global batch ``(B,)``: every ``world_size``-th index,
    as ``DistributedSampler`` deals them out. Returns ``(B / world_size,)``."""
    if batch.ndim != 1 or batch.numel() % world_size:
        raise ValueError(f"batch must be (B,) with B divisible by world_size={world_size}, got {tuple(batch.shape)}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return batch[rank::world_size]


def _check_data(X: torch.Tensor, y: torch.Tensor) -> None:
    if X.ndim != 2 or X.shape[1] != 64:
        raise ValueError(f"X must have shape (N, 64) (flattened digits), got {tuple(X.shape)}")
    if y.shape != X.shape[:1]:
        raise ValueError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")


@checked
def train_single_process(X: Float[Tensor, "N 64"], y: Int[Tensor, "N"], config: DataParallelConfig) -> TrainResult:
    """The reference: one process, each step on the whole global batch ``(B, 64)``."""
    _check_data(X, y)
    check_ids("y", y, 10)
    X = X.to(_DTYPES[config.dtype])
    model = make_mlp(config)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    losses, start = [], time.perf_counter()
    for idx in global_batch_indices(len(X), config):
        loss = F.cross_entropy(model(X[idx]), y[idx])  # mean over the B samples
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return TrainResult(params, losses, seconds, seconds)


def _launch(worker, args: tuple, nprocs: int, start_method: str | None) -> None:
    """Start ``nprocs`` processes running ``worker(rank, *args)`` and wait for all of them.

    ``forkserver`` (default where available): one server process imports torch once and forks
    every worker from it, so a second launch in the same session starts in a fraction of a
    second instead of paying the multi-second ``import torch`` per worker that ``spawn`` pays
    (the server stays alive, holding torch in memory, until the calling process exits).
    Both need ``worker`` importable from a module, which is why the workers live here.
    """
    mp = torch.multiprocessing
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn', 'forkserver' or None, got {start_method!r}")
    if start_method == "forkserver":
        # DDP's constructor imports torch._dynamo (seconds): pay it once, in the server.
        mp.set_forkserver_preload(["torch", "torch._dynamo", "utils.distributed"])
    mp.start_processes(worker, args=args, nprocs=nprocs, join=True, start_method=start_method)


def _init_process_group(rank: int, world_size: int, port: int) -> None:
    # Every worker: one thread (the cores are shared), localhost only, gloo for CPU tensors.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    if Path("/sys/class/net/lo").exists():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # never a real network interface
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size,
                                         timeout=timedelta(seconds=60))


def _ddp_train(rank: int, world_size: int, config: DataParallelConfig, X: torch.Tensor,
               y: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[float], float]:
    """The training loop of one rank; returns (parameters, global losses, loop seconds)."""
    dist = torch.distributed
    X = X.to(_DTYPES[config.dtype])
    model = make_mlp(config)  # same seed on every rank; DDP also broadcasts rank 0's weights
    ddp = nn.parallel.DistributedDataParallel(model)  # CPU: no device_ids
    opt = torch.optim.SGD(ddp.parameters(), lr=config.lr)
    losses = []
    dist.barrier()
    start = time.perf_counter()
    for idx in global_batch_indices(len(X), config):
        local = shard_indices(idx, rank, world_size)  # (B / world_size,)
        loss = F.cross_entropy(ddp(X[local]), y[local])  # mean over the local shard
        opt.zero_grad()
        loss.backward()  # DDP all-reduces the gradients here, bucket by bucket, and divides by world_size
        opt.step()
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss)  # sum of the local means, for the log only
        losses.append(global_loss.item() / world_size)
    seconds = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    params = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    return params, losses, seconds.item()


def _ddp_worker(rank: int, world_size: int, port: int, config: DataParallelConfig,
                X: torch.Tensor, y: torch.Tensor, out_dir: str) -> None:
    """One rank of :func:`train_data_parallel` (module level so that ``spawn`` can import it)."""
    _init_process_group(rank, world_size, port)
    try:
        # The DDP wrapper lives only inside _ddp_train: it must be freed *before* the process
        # group is destroyed (freeing it afterwards can hang the worker at exit).
        params, losses, seconds = _ddp_train(rank, world_size, config, X, y)
        if rank == 0:
            from safetensors.torch import save_file

            save_file(params, os.path.join(out_dir, "params.safetensors"))
            with open(os.path.join(out_dir, "log.json"), "w") as fh:
                json.dump({"losses": losses, "train_seconds": seconds}, fh)
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


@checked
def train_data_parallel(X: Float[Tensor, "N 64"], y: Int[Tensor, "N"], config: DataParallelConfig, *,
                        start_method: OneOf("forkserver", "spawn") | None = None) -> TrainResult:
    """Train with ``DistributedDataParallel`` in ``config.world_size`` local processes (gloo, CPU).

    Args:
        X: ``(N, 64)`` flattened digits; y: ``(N,)`` int64 labels.
        config: the run; ``global_batch_size`` is split evenly over the ranks.
        start_method: ``"forkserver"``, ``"spawn"``, or None for forkserver where available.

    Returns:
        A :class:`TrainResult` with rank 0's final parameters (saved with safetensors in a
        temporary folder and read back), the global-batch losses and the timings.
    """
    from safetensors.torch import load_file

    _check_data(X, y)
    check_ids("y", y, 10)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        _launch(_ddp_worker, (config.world_size, find_free_port(), config, X, y, out_dir),
                config.world_size, start_method)
        params = load_file(os.path.join(out_dir, "params.safetensors"))
        log = json.loads(Path(out_dir, "log.json").read_text())
    return TrainResult(params, log["losses"], log["train_seconds"], time.perf_counter() - start,
                       extra={"config": asdict(config)})


def _all_reduce_worker(rank: int, world_size: int, port: int, sizes: list[int], repeats: int,
                       out_dir: str) -> None:
    """One rank of :func:`all_reduce_demo`."""
    dist = torch.distributed
    _init_process_group(rank, world_size, port)
    try:
        before = torch.arange(4, dtype=torch.float32) + 10 * rank  # rank r holds [10r, 10r+1, ...]
        after = before.clone()
        dist.all_reduce(after, op=dist.ReduceOp.SUM)  # in place: every rank now holds the sum
        timings = {}
        for numel in sizes:
            buf = torch.ones(numel)
            dist.all_reduce(buf)  # warm-up
            dist.barrier()
            start = time.perf_counter()
            for _ in range(repeats):
                dist.all_reduce(buf)
            timings[numel] = (time.perf_counter() - start) / repeats
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"before": before.tolist(), "after": after.tolist(), "seconds": timings}, fh)
    finally:
        dist.destroy_process_group()


@checked
def all_reduce_demo(world_size: PosInt = 2, sizes: tuple[PosInt, ...] | list[PosInt] = (1_000, 100_000, 1_000_000),
                    repeats: PosInt = 5, *, start_method: OneOf("forkserver", "spawn") | None = None) -> list[dict]:
    """Run ``torch.distributed.all_reduce`` in ``world_size`` local processes.

    Rank r starts with ``[10r, 10r+1, 10r+2, 10r+3]``; after a SUM all-reduce every rank holds
    the element-wise sum. Then it times all-reduces of float32 tensors of each size in ``sizes``.

    Returns:
        One dict per rank: ``before`` and ``after`` (lists), ``seconds`` (size -> mean seconds).
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    with tempfile.TemporaryDirectory() as out_dir:
        _launch(_all_reduce_worker, (world_size, find_free_port(), list(sizes), repeats, out_dir),
                world_size, start_method)
        out = [json.loads(Path(out_dir, f"rank{r}.json").read_text()) for r in range(world_size)]
    for rank in out:
        rank["seconds"] = {int(k): v for k, v in rank["seconds"].items()}
    return out


@checked
def ring_all_reduce_bytes(num_bytes: NonNegFloat, world_size: PosInt) -> float:
    """Bytes each rank sends in a ring all-reduce of a ``num_bytes`` buffer:
    ``2 (W - 1) / W * num_bytes`` (reduce-scatter, then all-gather, of W chunks)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    return 2 * (world_size - 1) / world_size * num_bytes


# ----------------------------------------------------------------------------------------
# Tensor parallelism (one process, shards in a list)
# ----------------------------------------------------------------------------------------

def _check_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, num_shards: int,
                  split_dim: int) -> None:
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be (B, C_in) and weight (C_out, C_in) with the same C_in, "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards <= 0 \
            or weight.shape[split_dim] % num_shards:
        raise ValueError(f"num_shards must be a positive int dividing {weight.shape[split_dim]}, got {num_shards!r}")


@checked
def column_parallel_linear(x: Float[Tensor, "B C_in"], weight: Float[Tensor, "C_out C_in"],
                           bias: Float[Tensor, "C_out"] | None,
                           num_shards: PosInt) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``F.linear(x, weight, bias)`` with the *output* features split over ``num_shards`` devices.

    Writing the layer as ``Y = X A`` with ``A = weight.T`` (C_in, C_out), shard i holds the
    columns ``A[:, i]`` (Megatron-LM's "column parallel"): every shard needs all of ``x`` and
    computes its own slice of ``Y``; the slices are concatenated (an all-gather), or kept split
    when the next layer is row-parallel.

    Returns ``(y, partial)``: ``y`` ``(B, C_out)`` and the shards' outputs ``(B, C_out / n)``.
    """
    _check_linear(x, weight, bias, num_shards, 0)
    w_shards = weight.chunk(num_shards, dim=0)  # n x (C_out / n, C_in)
    b_shards = bias.chunk(num_shards) if bias is not None else [None] * num_shards
    partial = [F.linear(x, w, b) for w, b in zip(w_shards, b_shards)]  # n x (B, C_out / n)
    return torch.cat(partial, dim=1), partial


@checked
def row_parallel_linear(x: Float[Tensor, "B C_in"], weight: Float[Tensor, "C_out C_in"],
                        bias: Float[Tensor, "C_out"] | None,
                        num_shards: PosInt) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``F.linear(x, weight, bias)`` with the *input* features split over ``num_shards`` devices.

    Shard i holds the rows ``A[i, :]`` of ``A = weight.T`` and the matching slice of ``x``'s
    features; each computes a full-size partial product, and the partials are summed (an
    all-reduce). The bias is added once, after the sum.

    Returns ``(y, partial)``: ``y`` ``(B, C_out)`` and the shards' partial sums ``(B, C_out)``.
    """
    _check_linear(x, weight, bias, num_shards, 1)
    x_shards = x.chunk(num_shards, dim=1)  # n x (B, C_in / n)
    w_shards = weight.chunk(num_shards, dim=1)  # n x (C_out, C_in / n)
    partial = [xs @ ws.T for xs, ws in zip(x_shards, w_shards)]  # n x (B, C_out)
    y = torch.stack(partial).sum(dim=0)
    return (y + bias if bias is not None else y), partial


# ----------------------------------------------------------------------------------------
# Pipeline parallelism and ZeRO, as arithmetic
# ----------------------------------------------------------------------------------------

@checked
def gpipe_schedule(num_stages: PosInt, num_microbatches: PosInt) -> np.ndarray:
    """The GPipe schedule: all forwards, then all backwards, one time slot per micro-batch step.

    Returns an int array ``(p, 2 (m + p - 1))``: entry ``j + 1`` when stage s runs the forward of
    micro-batch j in that slot, ``-(j + 1)`` for its backward, 0 when the stage idles (the bubble).
    Stage s runs forward j at slot ``s + j`` and backward j at slot ``(m + p - 1) + (p - 1 - s) + j``.
    """
    p, m = num_stages, num_microbatches
    for name, value in (("num_stages", p), ("num_microbatches", m)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    slots = m + p - 1
    grid = np.zeros((p, 2 * slots), dtype=int)
    for s in range(p):
        for j in range(m):
            grid[s, s + j] = j + 1
            grid[s, slots + (p - 1 - s) + j] = -(j + 1)
    return grid


@checked
def pipeline_bubble_fraction(num_stages: PosInt, num_microbatches: PosInt) -> float:
    """Idle fraction of a GPipe schedule, ``(p - 1) / (m + p - 1)``."""
    gpipe_schedule(num_stages, num_microbatches)  # validates the arguments
    return (num_stages - 1) / (num_microbatches + num_stages - 1)


# Mixed-precision Adam, bytes per parameter: fp16 weights 2 + fp16 gradients 2 + fp32 master
# weights 4 + Adam first moment 4 + second moment 4 = 16 (the ZeRO paper's 2 + 2 + K, K = 12).
ADAM_MIXED_PRECISION_BYTES = {"fp16 weights": 2, "fp16 gradients": 2, "fp32 master weights": 4,
                              "Adam m (fp32)": 4, "Adam v (fp32)": 4}


@checked
def zero_memory_per_device(num_params: PosFloat, num_devices: PosInt, stage: OneOf(0, 1, 2, 3)) -> float:
    """Bytes of model state per device for mixed-precision Adam under ZeRO ``stage`` (0-3).

    Stage 0 (plain data parallelism) replicates all 16 bytes/parameter; stage 1 shards the 12
    bytes of optimizer state, stage 2 also the 2 of gradients, stage 3 (= FSDP's full
    sharding) also the 2 of weights. Activations and buffers are not counted.
    """
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage!r}")
    weights, grads, optim = 2.0, 2.0, 12.0
    sharded = {0: 0.0, 1: optim, 2: optim + grads, 3: optim + grads + weights}[stage]
    return num_params * ((weights + grads + optim - sharded) + sharded / num_devices)
