"""torch.distributed for the toolbox's entry points: start from torchrun's environment, agree, reduce.

``torchrun --nproc-per-node N script.py ...`` (and ``--nnodes``) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous variables; ``init_from_env()`` joins that process group (NCCL when
CUDA is usable, gloo otherwise) and does nothing without them, so one process without torchrun
runs as before. Every helper here is a no-op (or the identity) when no process group is running.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Mapping, Optional

import torch
import torch.distributed as dist


class RankMismatchError(ValueError):
    """Ranks that were started with different inputs (one-line message naming them)."""


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(backend: Optional[str] = None) -> bool:
    """Join the process group torchrun describes in the environment; True if one is running."""
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_device_index())
    dist.init_process_group(backend=backend)
    return True


def silence_other_ranks() -> None:
    """Send the stdout of ranks other than 0 to /dev/null (rank 0 speaks for all; errors still show)."""
    if not is_main():
        sys.stdout = open(os.devnull, "w")


def shutdown() -> None:
    """Leave the process group (if any)."""
    if is_distributed():
        dist.destroy_process_group()


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def device_for_rank(requested: str) -> str:
    """``cuda:<local rank>`` for a CUDA request under torchrun, else ``requested`` unchanged."""
    if requested.startswith("cuda") and is_distributed() and ":" not in requested:
        return f"cuda:{local_device_index()}"
    return requested


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def sum_ints(*values: int) -> tuple[int, ...]:
    """Each value summed over all ranks."""
    if not is_distributed():
        return tuple(values)
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, list(values))
    return tuple(sum(column) for column in zip(*gathered))


def require_agreement(inputs: Mapping[str, object], program: str) -> None:
    """Refuse to start (on every rank) unless all ranks were given the same ``inputs``.

    Call it before any work: each rank's values are gathered and compared with rank 0's.
    """
    if not is_distributed():
        return
    mine = json.loads(json.dumps(dict(inputs), sort_keys=True, default=str))
    gathered: list = [None] * world_size()
    dist.all_gather_object(gathered, mine)
    for other_rank, theirs in enumerate(gathered):
        differing = [key for key in gathered[0] if theirs.get(key) != gathered[0][key]]
        if differing:
            key = differing[0]
            raise RankMismatchError(f"{program}: ranks disagree on {key}: rank 0 has {gathered[0][key]!r}, "
                                    f"rank {other_rank} has {theirs.get(key)!r}; start every rank with the same inputs")


def all_reduce_sum_(tensors: list[torch.Tensor]) -> None:
    """Sum ``tensors`` over the ranks in place (one flat all-reduce)."""
    if not is_distributed() or not tensors:
        return
    flat = torch.cat([tensor.reshape(-1) for tensor in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for tensor in tensors:
        tensor.copy_(flat[offset:offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()
