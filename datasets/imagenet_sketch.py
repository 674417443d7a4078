"""ImageNet-Sketch (all 1000 classes), test only: ``imagenet-sketch/{images/<wnid>/, classnames.txt}``."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_folders import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    dataset_dir = "imagenet-sketch"
    image_subdir = "images"
    layout = "imagenet-sketch/{images/<wnid>/, classnames.txt}"
