"""Oxford-IIIT Pets (37 breeds) in CoOp's layout: ``oxford_pets/{images/, annotations/, split_zhou_OxfordPets.json}``.

Class names are the lower-cased breed part of the image name (``Abyssinian_100`` -> ``abyssinian``), as CoOp's.
``OxfordPets.read_split`` / ``save_split`` / ``split_trainval`` / ``subsample_classes`` keep the static methods
CoOp-derived dataset files call.
"""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import base


@DATASET_REGISTRY.register()
class OxfordPets(base.CoOpStyleDataset):
    dataset_dir = "oxford_pets"
    split_filename = "split_zhou_OxfordPets.json"
    layout = "oxford_pets/{images/, annotations/, split_zhou_OxfordPets.json}"

    read_split = staticmethod(base.read_split)
    save_split = staticmethod(base.save_split)
    split_trainval = staticmethod(base.split_trainval)
    subsample_classes = staticmethod(base.subsample_classes)

    def make_split(self) -> base.Split:
        trainval = self.read_annotations("trainval.txt")
        test = self.read_annotations("test.txt")
        train, val = base.split_trainval(trainval)
        return train, val, test

    def read_annotations(self, split_file: str) -> list[Datum]:
        """Items of ``annotations/<split_file>`` (lines ``<image name> <class id> <species> <breed id>``)."""
        filepath = self.require_file(os.path.join("annotations", split_file))
        items = []
        with open(filepath) as file:
            for line_number, line in enumerate(file, 1):
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                imname, class_id = fields[0], int(fields[1])
                breed = imname.rsplit("_", 1)[0].lower()
                impath = os.path.join(self.image_dir, imname + ".jpg")
                items.append(base.checked_datum(impath, class_id - 1, breed, f"{filepath}:{line_number}"))
        return items
