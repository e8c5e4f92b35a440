"""Training on several GPUs or machines with PyTorch's own engine: `torchrun ... -m iamchars.cli train`.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; each process then holds its shard of the packed training
arrays on its own device, DistributedDataParallel averages the gradients, every rank validates on the whole
validation split (so all take the same decisions), and rank 0 alone writes checkpoints, metrics and plots.
Without torchrun everything here is a no-op and training is the ordinary single-process loop."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from iamchars.errors import UserError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over all ranks (the value itself in a single process)."""
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
        return value


def context(device_name: str = "auto") -> Context:
    """This process's place in a torchrun job, joining its process group on first use (gloo on the CPU,
    NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and not device_name.startswith("cpu")
        if cuda:
            gpus = torch.cuda.device_count()
            if local_rank >= gpus:  # more processes on this machine than GPUs: CUDA would only say "invalid ordinal"
                raise UserError(
                    f"torchrun started process {local_rank + 1} on this machine, which has {gpus} GPU(s): "
                    f"use --nproc_per_node={gpus}, or --device cpu to train on the CPU"
                )
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return Context(rank, world, local_rank)


def device_name(asked: str, ctx: Context) -> str:
    """Under torchrun each rank takes the GPU of its local rank."""
    if ctx.world > 1 and asked in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{ctx.local_rank}"
    return asked
