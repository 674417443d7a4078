"""Batch order and worker seeds follow upstream Dassl's plain ``DataLoader`` rules, with and without workers.

Upstream's rules, derived by hand from torch's ``DataLoader``/``RandomSampler`` (no upstream code needed):
each ``iter(loader)`` draws a base seed from the global torch generator, then ``RandomSampler`` draws its
seed from it and orders the items by ``randperm(n)`` of a generator seeded with that seed; batch ``i`` is
made by worker ``i % num_workers``, whose ``random`` and torch are seeded with ``base_seed + worker_id``.
"""
import random

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.data.data_manager import DatasetWrapper, build_data_loader
from dassl.data.datasets import Datum

N_ITEMS, BATCH = 10, 2


class IndexWrapper(DatasetWrapper):
    """Returns only the item's index."""

    def __getitem__(self, idx):
        return {"index": idx}


class RandomDrawWrapper(DatasetWrapper):
    """Returns, per item, its index and one draw of python's ``random`` and of torch (where it is loaded)."""

    def __getitem__(self, idx):
        if self.epoch_seed is not None:
            self.epoch_seed.sync_worker()
        return {"index": idx, "py": random.random(), "torch": torch.rand(()).item()}


def loader(num_workers, wrapper=RandomDrawWrapper):
    cfg = get_cfg_default()
    cfg.DATALOADER.NUM_WORKERS = num_workers
    cfg.USE_CUDA = False
    data = [Datum(label=i % 3, classname=str(i % 3)) for i in range(N_ITEMS)]
    return build_data_loader(cfg, "RandomSampler", data, batch_size=BATCH, tfm=None, is_train=True,
                             dataset_wrapper=wrapper)


def upstream_epoch(num_workers):
    """One epoch by upstream's rules: (item order, per-item python draws, per-item torch draws)."""
    base_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    sampler_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    order = torch.randperm(N_ITEMS, generator=torch.Generator().manual_seed(sampler_seed)).tolist()
    if num_workers == 0:  # the main process loads the items, drawing from the global generator
        return order, None, [torch.rand(()).item() for _ in range(N_ITEMS)]
    streams = {}
    for worker in range(num_workers):
        py, th = random.Random(base_seed + worker), torch.Generator().manual_seed(base_seed + worker)
        streams[worker] = (py, th)
    py_draws, torch_draws = [], []
    for batch in range(N_ITEMS // BATCH):
        py, th = streams[batch % num_workers]
        for _ in range(BATCH):
            py_draws.append(py.random())
            torch_draws.append(torch.rand((), generator=th).item())
    return order, py_draws, torch_draws


def epoch(data_loader):
    batches = list(data_loader)
    flat = lambda key: [value.item() for batch in batches for value in batch.get(key, [])]  # noqa: E731
    return flat("index"), flat("py"), flat("torch")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batches_and_worker_seeds_follow_upstream_rules(num_workers):
    data_loader = loader(num_workers)
    torch.manual_seed(7)
    got = [epoch(data_loader) for _ in range(2)]
    torch.manual_seed(7)
    expected = [upstream_epoch(num_workers) for _ in range(2)]
    for (order, py, th), (want_order, want_py, want_th) in zip(got, expected):
        assert order == want_order
        assert th == pytest.approx(want_th)
        if num_workers:
            assert py == pytest.approx(want_py)
    assert got[0][0] != got[1][0]  # the second epoch is a new draw, not a replay


def test_same_global_state_after_an_epoch_with_or_without_workers():
    """Both loaders consume the global generator alike, so what follows a loop does not depend on workers."""
    after = []
    for num_workers in (0, 2):
        data_loader = loader(num_workers, IndexWrapper)
        torch.manual_seed(3)
        epoch(data_loader)
        after.append(torch.rand(3))
    assert torch.equal(after[0], after[1])
