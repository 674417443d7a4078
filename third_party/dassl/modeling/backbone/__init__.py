"""Backbones: ``BACKBONE_REGISTRY``, ``Backbone`` base class, ``build_backbone``; torchvision ResNets."""
from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from . import resnet  # noqa: F401  (registers resnet18/34/50/101)

__all__ = ["BACKBONE_REGISTRY", "Backbone", "build_backbone"]
