"""Oxford Flowers-102 in CoOp's layout:
``oxford_flowers/{jpg/, imagelabels.mat, cat_to_name.json, split_zhou_OxfordFlowers.json}``.

Reading the split file needs nothing else; only building a new split (split file missing) reads
``imagelabels.mat`` (needs scipy) and names classes with ``cat_to_name.json`` (1-based label -> name).
"""
import json
import os
from collections import defaultdict

from dassl.data.datasets import DATASET_REGISTRY

from . import base


@DATASET_REGISTRY.register()
class OxfordFlowers(base.CoOpStyleDataset):
    dataset_dir = "oxford_flowers"
    image_subdirs = ("jpg",)
    split_filename = "split_zhou_OxfordFlowers.json"
    layout = "oxford_flowers/{jpg/, imagelabels.mat, cat_to_name.json, split_zhou_OxfordFlowers.json}"

    def make_split(self) -> base.Split:
        purpose = f"OxfordFlowers: building the missing {self.split_path}"
        labels = base.load_matlab(self.require_file("imagelabels.mat"), purpose)["labels"][0]
        with open(self.require_file("cat_to_name.json")) as file:
            label_to_name = json.load(file)
        impaths_by_label = defaultdict(list)
        for index, label in enumerate(labels):
            impaths_by_label[int(label)].append(os.path.join(self.image_dir, f"image_{index + 1:05d}.jpg"))
        images_by_class = {
            label - 1: (label_to_name[str(label)], impaths) for label, impaths in impaths_by_label.items()
        }
        return base.split_per_class(images_by_class)
