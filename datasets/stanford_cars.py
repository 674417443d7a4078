"""Stanford Cars (196 classes) in CoOp's layout:
``stanford_cars/{cars_train/, cars_test/, devkit/, cars_test_annos_withlabels.mat, split_zhou_StanfordCars.json}``.

Split paths are relative to ``stanford_cars/`` (``cars_train/00001.jpg``). Building a new split reads the
devkit's .mat files (needs scipy); class names put the year first (``2012 Tesla Model S Sedan``), as CoOp's.
"""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import base


@DATASET_REGISTRY.register()
class StanfordCars(base.CoOpStyleDataset):
    dataset_dir = "stanford_cars"
    image_subdirs = (".",)
    split_filename = "split_zhou_StanfordCars.json"
    layout = (
        "stanford_cars/{cars_train/, cars_test/, devkit/, cars_test_annos_withlabels.mat, "
        "split_zhou_StanfordCars.json}"
    )

    def make_split(self) -> base.Split:
        meta_file = self.require_file(os.path.join("devkit", "cars_meta.mat"))
        trainval_file = self.require_file(os.path.join("devkit", "cars_train_annos.mat"))
        test_file = self.require_file("cars_test_annos_withlabels.mat")
        purpose = f"StanfordCars: building the missing {self.split_path}"
        classnames = [year_first(name[0]) for name in base.load_matlab(meta_file, purpose)["class_names"][0]]
        trainval = self.read_annotations("cars_train", trainval_file, classnames, purpose)
        test = self.read_annotations("cars_test", test_file, classnames, purpose)
        train, val = base.split_trainval(trainval)
        return train, val, test

    def read_annotations(self, image_folder: str, anno_file: str, classnames: list, purpose: str) -> list[Datum]:
        annotations = base.load_matlab(anno_file, purpose)["annotations"][0]
        items = []
        for index, annotation in enumerate(annotations):
            label = int(annotation["class"][0, 0]) - 1
            impath = os.path.join(self.dataset_dir, image_folder, annotation["fname"][0])
            items.append(base.checked_datum(impath, label, classnames[label], f"{anno_file}[{index}]"))
        return items


def year_first(classname: str) -> str:
    """``AM General Hummer SUV 2000`` -> ``2000 AM General Hummer SUV`` (CoOp's class names)."""
    *model, year = classname.split(" ")
    return " ".join([year, *model])
