"""Food-101 in CoOp's layout: ``food-101/{images/<class>/, split_zhou_Food101.json}``.

Class names are the folder names (``apple_pie``), as in CoOp's split file; CoOp's trainers replace ``_`` with
a space when they build prompts.
"""
from dassl.data.datasets import DATASET_REGISTRY

from . import base


@DATASET_REGISTRY.register()
class Food101(base.CoOpStyleDataset):
    dataset_dir = "food-101"
    split_filename = "split_zhou_Food101.json"
    layout = "food-101/{images/<class>/, split_zhou_Food101.json}"

    def make_split(self) -> base.Split:
        return self.split_class_folders()
