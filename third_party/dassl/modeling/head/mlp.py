"""``mlp`` head: Linear (+ BatchNorm) + activation (+ Dropout) per hidden layer."""
from typing import Sequence, Union

import torch
import torch.nn as nn

from .build import HEAD_REGISTRY

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int = 2048,
        hidden_layers: Union[int, Sequence[int]] = (),
        activation: str = "relu",
        bn: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(hidden_layers, int):
            hidden_layers = [hidden_layers]
        if not hidden_layers:
            raise ValueError("mlp head needs at least one hidden layer (MODEL.HEAD.HIDDEN_LAYERS)")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown MODEL.HEAD.ACTIVATION {activation!r}; available: {sorted(ACTIVATIONS)}")
        layers = []
        for width in hidden_layers:
            layers.append(nn.Linear(in_features, width))
            if bn:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_features = width
        self.out_features = in_features
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


@HEAD_REGISTRY.register()
def mlp(**kwargs) -> MLP:
    return MLP(**kwargs)
