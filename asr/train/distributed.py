"""DistributedDataParallel when launched by torchrun (gloo on CPU, nccl on GPU); a no-op otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> Dist:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        device = torch.device("cuda", local_rank)
    else:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """DDP-wrap for more than one process. On GPU BatchNorm statistics are synchronised across ranks
    (SyncBatchNorm runs on GPU only); on CPU each rank normalises its own shard, as plain DDP does."""
    if d.world == 1:
        return model
    if d.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.device.index])
    return torch.nn.parallel.DistributedDataParallel(model)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.world > 1:
        # Every rank done with gloo before any tears it down: a rank that left early once aborted the other
        # ("terminate called without an active exception") on a loaded machine.
        dist.barrier()
        dist.destroy_process_group()
