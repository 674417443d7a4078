"""FGVC-Aircraft (100 variants) in CoOp's layout: ``fgvc_aircraft/{images/, variants.txt,
images_variant_{train,val,test}.txt}`` (the dataset's own split files; there is no split_zhou json).

Labels follow the order of ``variants.txt``; class names are the variant names (``707-320``).
"""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from . import base


@DATASET_REGISTRY.register()
class FGVCAircraft(base.CoOpStyleDataset):
    dataset_dir = "fgvc_aircraft"
    image_subdirs = ("images",)
    layout = "fgvc_aircraft/{images/, variants.txt, images_variant_train.txt, images_variant_val.txt, ...}"

    def read_or_make_split(self) -> base.Split:
        with open(self.require_file("variants.txt")) as file:
            variants = [line.strip() for line in file if line.strip()]
        variant_to_label = {variant: label for label, variant in enumerate(variants)}
        return tuple(
            self.read_variant_file(f"images_variant_{name}.txt", variant_to_label) for name in base.SPLIT_NAMES
        )

    def read_variant_file(self, filename: str, variant_to_label: dict[str, int]) -> list[Datum]:
        """Items of ``images_variant_<split>.txt`` (lines ``<image id> <variant name>``)."""
        filepath = self.require_file(filename)
        items = []
        with open(filepath) as file:
            for line_number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                image_id, variant = line.strip().split(" ", 1)
                where = f"{filepath}:{line_number}"
                if variant not in variant_to_label:
                    raise ValueError(f"{where}: variant {variant!r} is not in variants.txt")
                impath = os.path.join(self.image_dir, image_id + ".jpg")
                items.append(base.checked_datum(impath, variant_to_label[variant], variant, where))
        return items
