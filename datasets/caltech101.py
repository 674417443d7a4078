"""Caltech101 in CoOp's layout: ``caltech-101/{101_ObjectCategories/, split_zhou_Caltech101.json}``.

The background class and ``Faces_easy`` are left out, and four folder names get CoOp's class names.
"""
from dassl.data.datasets import DATASET_REGISTRY

from . import base

IGNORED_FOLDERS = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}


@DATASET_REGISTRY.register()
class Caltech101(base.CoOpStyleDataset):
    dataset_dir = "caltech-101"
    image_subdirs = ("101_ObjectCategories",)
    split_filename = "split_zhou_Caltech101.json"
    class_renames = NEW_CNAMES
    layout = "caltech-101/{101_ObjectCategories/<class>/, split_zhou_Caltech101.json}"

    def make_split(self) -> base.Split:
        return self.split_class_folders(ignored=IGNORED_FOLDERS)
