"""Data-parallel training under torchrun: process group set-up and the few collectives we need.

`torchrun --standalone --nproc_per_node=N -m lenet train ...` starts N copies of
`lenet train`; each reads RANK, WORLD_SIZE and LOCAL_RANK from its environment.
Without them, `Dist` is a single process and every collective is a no-op.
Backend: nccl when training on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# A peer that died shows up as a failed collective; this bounds how long any
# collective may wait before the survivors give up (and torchrun ends the job).
TIMEOUT = timedelta(seconds=60)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce(self, tensor: torch.Tensor, op=None) -> torch.Tensor:
        """Sum (or `op`) over ranks, in place; returns the tensor."""
        if self.active:
            dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any."""
        t = torch.tensor(float(flag), device=self.device)
        return bool(self.all_reduce(t, dist.ReduceOp.MAX) > 0)

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.active else None

    def all_gather_object(self, obj) -> list:
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast_buffers(self, model) -> None:
        """Give every rank rank 0's buffers (batch-norm running statistics, which each rank
        otherwise updates from its own shard), so the ranks hold one and the same model."""
        if self.active:
            for buf in model.buffers():
                dist.broadcast(buf, 0)

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: torch.device) -> Dist:
    """Join the process group torchrun describes, or return a single-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return Dist(rank, world, device)
