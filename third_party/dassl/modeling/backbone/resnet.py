"""ResNet feature extractors from torchvision (ImageNet weights when ``pretrained``)."""
import torch
import torch.nn as nn
import torchvision

from .backbone import Backbone
from .build import BACKBONE_REGISTRY


class TorchvisionResNet(Backbone):
    """A torchvision ResNet without its classifier: (B, 3, H, W) -> (B, out_features)."""

    def __init__(self, arch: str, pretrained: bool = True):
        super().__init__()
        weights = "DEFAULT" if pretrained else None
        net = getattr(torchvision.models, arch)(weights=weights)
        self._out_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _register(arch: str) -> None:
    def build(pretrained: bool = True, **kwargs) -> Backbone:
        return TorchvisionResNet(arch, pretrained=pretrained)

    build.__name__ = arch
    BACKBONE_REGISTRY.register(build)


for _arch in ("resnet18", "resnet34", "resnet50", "resnet101"):
    _register(_arch)
