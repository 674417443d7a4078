"""``HEAD_REGISTRY`` and ``build_head(name, verbose=True, **kwargs)``."""
from dassl.utils import Registry

from ..registry_builder import make_builder

HEAD_REGISTRY = Registry("HEAD")
build_head = make_builder(HEAD_REGISTRY, "head")
