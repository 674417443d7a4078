"""ImageNet-R (200 ImageNet classes, renditions), test only: ``imagenet-rendition/{imagenet-r/<wnid>/,
classnames.txt}``."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_folders import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetR(ImageNetVariant):
    dataset_dir = "imagenet-rendition"
    image_subdir = "imagenet-r"
    layout = "imagenet-rendition/{imagenet-r/<wnid>/, classnames.txt}"
