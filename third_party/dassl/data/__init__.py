"""Data: ``DataManager``, ``DatasetWrapper``, ``build_data_loader`` (datasets, samplers, transforms below)."""
from .data_manager import DataManager, DatasetWrapper, build_data_loader

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader"]
