"""Describable Textures (47 classes) in CoOp's layout: ``dtd/{images/, split_zhou_DescribableTextures.json}``.

Class names are the folder names. ``dtd/dtd/images`` (what extracting the archive inside ``dtd/`` gives) is
accepted too. ``DescribableTextures.read_and_split_data`` keeps the static method CoOp-derived files call.
"""
from dassl.data.datasets import DATASET_REGISTRY

from . import base


@DATASET_REGISTRY.register()
class DescribableTextures(base.CoOpStyleDataset):
    dataset_dir = "dtd"
    image_subdirs = ("images", "dtd/images")
    split_filename = "split_zhou_DescribableTextures.json"
    layout = "dtd/{images/<texture>/, split_zhou_DescribableTextures.json}"

    read_and_split_data = staticmethod(base.read_and_split_data)

    def make_split(self) -> base.Split:
        return self.split_class_folders()
