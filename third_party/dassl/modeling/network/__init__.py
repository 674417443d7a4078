"""Networks (``NETWORK_REGISTRY``, ``build_network``); none are registered by default."""
from .build import NETWORK_REGISTRY, build_network

__all__ = ["NETWORK_REGISTRY", "build_network"]
