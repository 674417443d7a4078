"""``EVALUATOR_REGISTRY`` and ``build_evaluator(cfg, **kwargs)`` (resolves ``cfg.TEST.EVALUATOR``)."""
from dassl.utils import Registry, check_availability

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    """Instantiate the evaluator named ``cfg.TEST.EVALUATOR``."""
    check_availability(cfg.TEST.EVALUATOR, EVALUATOR_REGISTRY.registered_names(), what="evaluator")
    if cfg.VERBOSE:
        print(f"Loading evaluator: {cfg.TEST.EVALUATOR}")
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)
