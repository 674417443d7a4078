"""``build_sampler``: a sampler from its Dassl name."""
from typing import Any, Optional, Sequence

from torch.utils.data.sampler import RandomSampler, Sampler, SequentialSampler

from .grouped import RandomClassSampler, RandomDomainSampler, SeqDomainSampler

SAMPLER_BUILDERS = {
    "RandomSampler": lambda data_source, batch_size, n_domain, n_ins: RandomSampler(data_source),
    "SequentialSampler": lambda data_source, batch_size, n_domain, n_ins: SequentialSampler(data_source),
    "RandomDomainSampler": lambda data_source, batch_size, n_domain, n_ins: RandomDomainSampler(data_source, batch_size, n_domain),
    "SeqDomainSampler": lambda data_source, batch_size, n_domain, n_ins: SeqDomainSampler(data_source, batch_size),
    "RandomClassSampler": lambda data_source, batch_size, n_domain, n_ins: RandomClassSampler(data_source, batch_size, n_ins),
}


def build_sampler(
    sampler_type: str,
    cfg: Optional[Any] = None,
    data_source: Optional[Sequence] = None,
    batch_size: int = 32,
    n_domain: int = 0,
    n_ins: int = 16,
) -> Sampler:
    """The sampler called ``sampler_type`` over ``data_source``."""
    if sampler_type not in SAMPLER_BUILDERS:
        raise ValueError(f"Unknown sampler type: {sampler_type}; available: {sorted(SAMPLER_BUILDERS)}")
    return SAMPLER_BUILDERS[sampler_type](data_source, batch_size, n_domain, n_ins)
