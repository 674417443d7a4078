"""``NETWORK_REGISTRY`` and ``build_network(name, verbose=True, **kwargs)``."""
from dassl.utils import Registry

from ..registry_builder import make_builder

NETWORK_REGISTRY = Registry("NETWORK")
build_network = make_builder(NETWORK_REGISTRY, "network")
