"""EuroSAT (10 land-cover classes) in CoOp's layout: ``eurosat/{2750/, split_zhou_EuroSAT.json}``.

Folder names become CoOp's descriptive class names (``AnnualCrop`` -> ``Annual Crop Land``).
"""
from dassl.data.datasets import DATASET_REGISTRY

from . import base

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(base.CoOpStyleDataset):
    dataset_dir = "eurosat"
    image_subdirs = ("2750",)
    split_filename = "split_zhou_EuroSAT.json"
    class_renames = NEW_CNAMES
    layout = "eurosat/{2750/<class>/, split_zhou_EuroSAT.json}"

    def make_split(self) -> base.Split:
        return self.split_class_folders()
