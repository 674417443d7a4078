"""``BACKBONE_REGISTRY`` and ``build_backbone(name, verbose=True, **kwargs)``."""
from dassl.utils import Registry

from ..registry_builder import make_builder

BACKBONE_REGISTRY = Registry("BACKBONE")
build_backbone = make_builder(BACKBONE_REGISTRY, "backbone")
