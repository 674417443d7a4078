"""Heads (``HEAD_REGISTRY``, ``build_head``); ``mlp`` is registered."""
from .build import HEAD_REGISTRY, build_head
from . import mlp  # noqa: F401

__all__ = ["HEAD_REGISTRY", "build_head"]
