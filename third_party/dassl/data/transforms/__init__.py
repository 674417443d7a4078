"""Image transforms named by ``INPUT.TRANSFORMS`` (``build_transform``)."""
from .transforms import AVAI_CHOICES, INTERPOLATION_MODES, build_transform

__all__ = ["AVAI_CHOICES", "INTERPOLATION_MODES", "build_transform"]
