"""Per-epoch reseeding of data-loader workers, so that runs replay exactly and draw as upstream Dassl's.

Upstream Dassl builds a plain ``DataLoader`` per split: every ``iter(loader)`` first draws the workers'
base seed from torch's global generator (with or without workers), then ``RandomSampler`` draws its
own seed from the same generator. Workers seed ``random`` and torch with ``base_seed + worker_id`` and
numpy with torch's ``_generate_state(base_seed, worker_id)``.

Here workers are persistent, so each worker's random state would otherwise run on from epoch to epoch
and could not be restored when an interrupted run resumes. Instead, at every ``iter(loader)`` the main
process draws the base seed from torch's global generator itself (checkpoints save and restore that
generator), exactly as upstream's iterator does, and publishes it in shared memory; each worker reseeds
``random``, numpy and torch from it, with upstream's formulas, before its first item of the epoch. The
loader's own base-seed draw uses a private generator, so the global generator is consumed as upstream's:
one draw per ``iter(loader)``, then the sampler's. Same seed, same batches and augmentations as upstream
Dassl with ``NUM_WORKERS`` 0 or more, whatever the number of epochs resumed.
"""
import ctypes
import multiprocessing
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info
from torch.utils.data._utils.worker import _generate_state

__all__ = ["EpochSeed", "EpochSeededDataLoader", "draw_base_seed"]


def draw_base_seed() -> int:
    """The seed a torch ``DataLoader`` iterator draws from the global generator (its ``_base_seed``)."""
    return int(torch.empty((), dtype=torch.int64).random_().item())


class EpochSeed:
    """An int64 in shared memory written by the main process and read by the workers."""

    def __init__(self):
        self._shared = multiprocessing.RawValue(ctypes.c_int64, 0)
        self._seen = None  # per-process copy: the seed this worker last applied

    def publish(self, seed: int) -> None:
        self._shared.value = seed

    def sync_worker(self) -> None:
        """In a worker, reseed the RNGs when the main process published a new epoch seed."""
        info = get_worker_info()
        if info is None:
            return
        seed = self._shared.value
        if seed == self._seen:
            return
        self._seen = seed
        random.seed(seed + info.id)
        torch.manual_seed(seed + info.id)
        np.random.seed(_generate_state(seed, info.id))


class EpochSeededDataLoader(DataLoader):
    """A ``DataLoader`` that draws its workers' seed from the global torch RNG at every epoch."""

    def __init__(self, *args, epoch_seed: EpochSeed, **kwargs):
        super().__init__(*args, generator=torch.Generator(), **kwargs)
        self.epoch_seed = epoch_seed

    def __iter__(self):
        seed = draw_base_seed()  # drawn with or without workers, as upstream's iterator does
        if self.num_workers > 0:
            self.generator.manual_seed(seed)
            self.epoch_seed.publish(seed)
        return super().__iter__()
