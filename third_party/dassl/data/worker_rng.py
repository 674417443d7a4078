"""Per-epoch reseeding of data-loader workers, so that runs replay exactly.

With persistent workers, each worker's random state would otherwise run on from epoch to
epoch and could not be restored when an interrupted run resumes. Instead, the main process
draws one seed per epoch from torch's global generator (which checkpoints save and restore)
and publishes it in shared memory; each worker reseeds python ``random``, numpy and torch
with ``seed + worker_id`` before its first item of the epoch. The augmentations of a run are
then a function of the global seed alone, whatever the number of epochs resumed.
"""
import ctypes
import multiprocessing
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

__all__ = ["EpochSeed", "EpochSeededDataLoader"]


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
        worker_seed = (seed + info.id) % (2**63)
        random.seed(worker_seed)
        np.random.seed(worker_seed % (2**32))
        torch.manual_seed(worker_seed)


class EpochSeededDataLoader(DataLoader):
    """A ``DataLoader`` that draws a fresh worker seed from the global torch RNG at every epoch."""

    def __init__(self, *args, epoch_seed: EpochSeed, **kwargs):
        super().__init__(*args, generator=torch.Generator(), **kwargs)
        self.epoch_seed = epoch_seed

    def __iter__(self):
        if self.num_workers > 0:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            self.generator.manual_seed(seed)
            self.epoch_seed.publish(seed)
        return super().__iter__()
