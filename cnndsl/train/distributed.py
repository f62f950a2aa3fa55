"""DistributedDataParallel helpers: init from torchrun's environment, reductions, rank-0 writes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device_type: str, timeout_s: float = 300.0) -> Dist:
    """Join the process group torchrun describes (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum a tensor over ranks (a no-op on one process)."""
    if d.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj, d: Dist):
    """Rank 0's value of a picklable object, on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def wrap(model: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    """DDP-wrap the model (no device_ids on CPU)."""
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    if device.type == "cuda":
        return DDP(model, device_ids=[device.index or 0])
    return DDP(model)


def leave(rc: int) -> int:
    """Under torchrun, exit now with ``rc`` (output flushed, files already fsynced) instead of
    returning: the C++ static destructors that run at a normal exit can abort the process
    ("terminate called without an active exception") while a gloo worker thread is torn down."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
