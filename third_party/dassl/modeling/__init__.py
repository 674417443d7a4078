"""Model registries (backbone, head, network) and the ops helpers CoOp-family code imports."""
from .backbone import BACKBONE_REGISTRY, Backbone, build_backbone
from .head import HEAD_REGISTRY, build_head
from .network import NETWORK_REGISTRY, build_network

__all__ = [
    "BACKBONE_REGISTRY", "Backbone", "build_backbone",
    "HEAD_REGISTRY", "build_head",
    "NETWORK_REGISTRY", "build_network",
]
