"""``TRAINER_REGISTRY`` and ``build_trainer(cfg)`` (resolves ``cfg.TRAINER.NAME``)."""
from dassl.utils import Registry, check_availability

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    """Instantiate the trainer registered as ``cfg.TRAINER.NAME``; unknown names list the registered ones."""
    check_availability(cfg.TRAINER.NAME, TRAINER_REGISTRY.registered_names(), what="trainer")
    if cfg.VERBOSE:
        print(f"Loading trainer: {cfg.TRAINER.NAME}")
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)
