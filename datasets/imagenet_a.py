"""ImageNet-A (200 ImageNet classes, natural adversarial examples), test only:
``imagenet-adversarial/{imagenet-a/<wnid>/, classnames.txt}``."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_folders import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetVariant):
    dataset_dir = "imagenet-adversarial"
    image_subdir = "imagenet-a"
    layout = "imagenet-adversarial/{imagenet-a/<wnid>/, classnames.txt}"
