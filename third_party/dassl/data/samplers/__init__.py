"""Samplers named by ``DATALOADER.*.SAMPLER`` and ``build_sampler``."""
from torch.utils.data.sampler import RandomSampler, SequentialSampler

from .build import build_sampler
from .grouped import RandomClassSampler, RandomDomainSampler, SeqDomainSampler

__all__ = [
    "build_sampler",
    "RandomSampler",
    "SequentialSampler",
    "RandomDomainSampler",
    "SeqDomainSampler",
    "RandomClassSampler",
]
