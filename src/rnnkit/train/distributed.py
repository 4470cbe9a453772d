"""Multi-process data parallelism under torchrun: environment, process group, collectives on plain values.

``torchrun --nproc_per_node N rnnkit train ...`` (or ``python -m torch.distributed.run``) sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`from_env` reads them. The Trainer then joins the
process group (gloo on CPU, nccl on CUDA), wraps the model in DistributedDataParallel, trains on
``batches.shard(rank, world_size)``, sums stats over ranks, and lets only rank 0 write files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env(environ: dict | None = None) -> DistContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (as set by torchrun); absent means a single process."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ValueError(f"distributed environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({e})") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(
            f"distributed environment: expected 0 <= RANK < WORLD_SIZE, got RANK={rank} WORLD_SIZE={world}"
        )
    return DistContext(rank=rank, world_size=world, local_rank=local)


def pick_device(requested: str, ctx: DistContext) -> torch.device:
    """Resolve TrainConfig.device; under DDP on CUDA each process uses cuda:LOCAL_RANK."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available (use device='cpu' or 'auto')")
    if requested == "cuda" and ctx.enabled:
        requested = f"cuda:{ctx.local_rank}"
    device = torch.device(requested)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_process_group(ctx: DistContext, device: torch.device) -> bool:
    """Join the default process group if distributed and not joined yet; True if this call created it."""
    if not ctx.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)
    return True


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64), identity when not distributed."""
    if not ctx.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_gather_bytes(data: bytes, ctx: DistContext, device: torch.device) -> list[bytes]:
    """Every rank's ``data`` (one entry per rank), by padding to the longest and gathering uint8 tensors."""
    if not ctx.enabled:
        return [data]
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, size)
    longest = max(int(s.item()) for s in sizes)
    buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if data else buf[:0]
    bufs = [torch.zeros_like(buf) for _ in range(ctx.world_size)]
    dist.all_gather(bufs, buf)
    return [bytes(b[: int(s.item())].cpu().tolist()) for b, s in zip(bufs, sizes)]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
