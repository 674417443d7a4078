"""``DATASET_REGISTRY`` and ``build_dataset(cfg)`` (resolves ``cfg.DATASET.NAME``)."""
from dassl.utils import Registry, check_availability

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate the registered dataset named ``cfg.DATASET.NAME`` with ``cfg``."""
    check_availability(cfg.DATASET.NAME, DATASET_REGISTRY.registered_names(), what="dataset")
    if cfg.VERBOSE:
        print(f"Loading dataset: {cfg.DATASET.NAME}")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
