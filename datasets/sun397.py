"""SUN397 in CoOp's layout: ``sun397/{SUN397/, split_zhou_SUN397.json, ClassName.txt, Training_01.txt, ...}``.

Class names drop the initial-letter folder and put qualifiers first (``/b/bakery/shop`` -> ``shop bakery``),
as CoOp's; building a new split uses partition 01 (``Training_01.txt``/``Testing_01.txt``).
"""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import base


@DATASET_REGISTRY.register()
class SUN397(base.CoOpStyleDataset):
    dataset_dir = "sun397"
    image_subdirs = ("SUN397",)
    split_filename = "split_zhou_SUN397.json"
    layout = "sun397/{SUN397/<letter>/<class>/, split_zhou_SUN397.json, ClassName.txt, Training_01.txt, ...}"

    def make_split(self) -> base.Split:
        with open(self.require_file("ClassName.txt")) as file:
            categories = [line.strip().lstrip("/") for line in file if line.strip()]
        category_to_label = {category: label for label, category in enumerate(categories)}
        trainval = self.read_partition("Training_01.txt", category_to_label)
        test = self.read_partition("Testing_01.txt", category_to_label)
        train, val = base.split_trainval(trainval)
        return train, val, test

    def read_partition(self, filename: str, category_to_label: dict[str, int]) -> list[Datum]:
        """Items of a partition file (lines ``/a/abbey/sun_xxx.jpg``)."""
        filepath = self.require_file(filename)
        items = []
        with open(filepath) as file:
            for line_number, line in enumerate(file, 1):
                relpath = line.strip().lstrip("/")
                if not relpath:
                    continue
                category = os.path.dirname(relpath)
                where = f"{filepath}:{line_number}"
                if category not in category_to_label:
                    raise ValueError(f"{where}: class {category!r} is not in ClassName.txt")
                impath = os.path.join(self.image_dir, relpath)
                items.append(base.checked_datum(impath, category_to_label[category], classname(category), where))
        return items


def classname(category: str) -> str:
    """``b/bakery/shop`` -> ``shop bakery``."""
    return " ".join(category.split("/")[1:][::-1])
