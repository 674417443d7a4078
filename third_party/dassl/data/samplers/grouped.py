"""Samplers that build each minibatch from groups of items (domains or classes).

- ``RandomDomainSampler``: each batch = ``n_domain`` random domains x ``batch_size / n_domain``
  images (domain generalization: every batch sees several domains).
- ``SeqDomainSampler``: each batch = every domain, in sorted order, equally represented.
- ``RandomClassSampler``: each batch = ``batch_size / n_ins`` random classes x ``n_ins`` images.
An epoch ends when a group can no longer fill its share, as in Dassl. Randomness comes from
python's ``random`` (and numpy for class oversampling), seeded by ``set_random_seed``.
"""
import random
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
from torch.utils.data.sampler import Sampler

__all__ = ["RandomDomainSampler", "SeqDomainSampler", "RandomClassSampler"]


def _indices_by(data_source: Sequence, attribute: str) -> Dict[int, List[int]]:
    groups: Dict[int, List[int]] = defaultdict(list)
    for index, item in enumerate(data_source):
        groups[getattr(item, attribute)].append(index)
    return groups


def _draw_equal_shares(pools: Dict[int, List[int]], pick_groups, per_group: int) -> List[int]:
    """Repeatedly take ``per_group`` random unused indices from each group chosen by ``pick_groups()``.

    Stops after the round in which some group is left with fewer than ``per_group`` indices.
    """
    shuffled = {group: random.sample(indices, len(indices)) for group, indices in pools.items()}
    used = {group: 0 for group in pools}
    order: List[int] = []
    exhausted = False
    while not exhausted:
        for group in pick_groups():
            start = used[group]
            order.extend(shuffled[group][start:start + per_group])
            used[group] = start + per_group
            exhausted = exhausted or len(shuffled[group]) - used[group] < per_group
    return order


class RandomDomainSampler(Sampler):
    """Batches of ``n_domain`` random domains with ``batch_size // n_domain`` images each."""

    def __init__(self, data_source: Sequence, batch_size: int, n_domain: Optional[int]):
        self.data_source = data_source
        self.domain_dict = _indices_by(data_source, "domain")
        self.domains = list(self.domain_dict)
        if n_domain is None or n_domain <= 0:
            n_domain = len(self.domains)
        if batch_size % n_domain != 0:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of domains per batch ({n_domain})")
        self.n_img_per_domain = batch_size // n_domain
        self.batch_size = batch_size
        self.n_domain = n_domain
        self.length = len(self._order())

    def _order(self) -> List[int]:
        return _draw_equal_shares(self.domain_dict, lambda: random.sample(self.domains, self.n_domain), self.n_img_per_domain)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return self.length


class SeqDomainSampler(Sampler):
    """Batches holding ``batch_size // n_domains`` random images of every domain, domains sorted."""

    def __init__(self, data_source: Sequence, batch_size: int):
        self.data_source = data_source
        self.domain_dict = _indices_by(data_source, "domain")
        self.domains = sorted(self.domain_dict)
        n_domain = len(self.domains)
        if batch_size % n_domain != 0:
            raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of domains ({n_domain})")
        self.n_img_per_domain = batch_size // n_domain
        self.batch_size = batch_size
        self.n_domain = n_domain
        self.length = len(self._order())

    def _order(self) -> List[int]:
        return _draw_equal_shares(self.domain_dict, lambda: self.domains, self.n_img_per_domain)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return self.length


class RandomClassSampler(Sampler):
    """Batches of ``batch_size // n_ins`` random classes with ``n_ins`` images each.

    A class with fewer than ``n_ins`` images is oversampled (with replacement) to ``n_ins``.
    """

    def __init__(self, data_source: Sequence, batch_size: int, n_ins: int):
        if batch_size < n_ins:
            raise ValueError(f"batch_size={batch_size} must be no less than n_ins={n_ins}")
        self.data_source = data_source
        self.batch_size = batch_size
        self.n_ins = n_ins
        self.ncls_per_batch = batch_size // n_ins
        self.index_dic = _indices_by(data_source, "label")
        self.labels = list(self.index_dic)
        if len(self.labels) < self.ncls_per_batch:
            raise ValueError(
                f"RandomClassSampler needs at least {self.ncls_per_batch} classes, the data has {len(self.labels)}"
            )
        self.length = len(self._order())

    def _chunks_per_label(self) -> Dict[int, List[List[int]]]:
        chunks: Dict[int, List[List[int]]] = {}
        for label in self.labels:
            indices = list(self.index_dic[label])
            if len(indices) < self.n_ins:
                indices = np.random.choice(indices, size=self.n_ins, replace=True).tolist()
            random.shuffle(indices)
            n_full = len(indices) // self.n_ins
            chunks[label] = [indices[k * self.n_ins:(k + 1) * self.n_ins] for k in range(n_full)]
        return chunks

    def _order(self) -> List[int]:
        chunks = self._chunks_per_label()
        available = list(self.labels)
        order: List[int] = []
        while len(available) >= self.ncls_per_batch:
            for label in random.sample(available, self.ncls_per_batch):
                order.extend(chunks[label].pop(0))
                if not chunks[label]:
                    available.remove(label)
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return self.length
