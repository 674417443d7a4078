"""Base class of feature extractors: ``forward`` returns features, ``out_features`` their width."""
import torch.nn as nn


class Backbone(nn.Module):
    """Subclasses set ``self._out_features`` (feature dimension) in ``__init__``."""

    _out_features: int = None

    @property
    def out_features(self) -> int:
        return self._out_features
