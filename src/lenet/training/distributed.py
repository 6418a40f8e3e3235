"""Data-parallel training under torchrun: process group set-up and the few collectives we need.

`torchrun --standalone --nproc_per_node=N -m lenet train ...` starts N copies of
`lenet train`; each reads RANK, WORLD_SIZE and LOCAL_RANK from its environment.
Without them, `Dist` is a single process and every collective is a no-op.
Backend: nccl when training on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

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

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, True on every rank when it is true on any: one collective for all."""
        t = torch.tensor([float(f) for f in flags], device=self.device)
        return [bool(v > 0) for v in self.all_reduce(t, dist.ReduceOp.MAX)]

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
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=attempt_store(rank, world), rank=rank, world_size=world, timeout=TIMEOUT)
    return Dist(rank, world, device)


def attempt_store(rank: int, world: int):
    """The key-value store the ranks meet in, under a prefix of their own per torchrun attempt.

    After an elastic restart the workers reach the same store as the attempt before, which
    still holds the dead workers' addresses under the same keys; the new ranks would read those
    and connect to nothing (seen here: gloo's connectFullMesh refused). A prefix per attempt
    (TORCHELASTIC_RESTART_COUNT) keeps each attempt's keys apart. None outside torchrun: the
    environment's MASTER_ADDR/MASTER_PORT as usual (e.g. under Slurm)."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        return None
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_hosts_it and rank == 0, timeout=TIMEOUT)
    return dist.PrefixStore(f"lenet/attempt-{attempt}", store)
