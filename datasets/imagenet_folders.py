"""ImageNet's class-name file and the test-only ImageNet variants (V2, Sketch, A, R) in CoOp's layout.

``classnames.txt`` has one ``<wnid> <class name>`` line per class in ImageNet's label order (CLIP's names).
A variant stores its images in one folder per class, each folder's images listed in ``DATASET.IMAGE_ORDER``
(the file system's order by default, as CoOp's ``listdir_nohidden``). Labels follow CoOp: the variant's class folders in
sorted order (so ImageNet-A/R have labels 0..199 and 200 class names, and the protocol is 200-way, as in
the published numbers); ``imagenet_labels[label]`` gives the ImageNet label of the same class (its index in
``classnames.txt``) for models with a 1000-way head.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from dassl.data.datasets import DatasetBase, Datum

from .base import DATASETS_MD, check_image_order, list_images, list_subfolders

CLASSNAMES_FILE = "classnames.txt"
IMAGENET_DIR = "imagenet"


def read_classnames(text_file: str) -> OrderedDict[str, str]:
    """``wnid -> class name`` from a ``classnames.txt`` (``<wnid> <class name>`` per line), in file order."""
    classnames = OrderedDict()
    with open(text_file) as file:
        for line_number, line in enumerate(file, 1):
            if not line.strip():
                continue
            fields = line.strip().split(" ", 1)
            if len(fields) != 2:
                raise ValueError(f"{text_file}:{line_number}: expected '<wnid> <class name>', got {line.strip()!r}")
            classnames[fields[0]] = fields[1].strip()
    return classnames


def read_class_folders(
    image_dir: str, folder_to_label: dict[str, int], classnames: list[str], order: str = "filesystem"
) -> list[Datum]:
    """Items of ``image_dir/<folder>/<image>`` for every folder in ``folder_to_label`` (in its order), each
    folder's images in ``order`` (``filesystem``: ``os.listdir``'s, as CoOp's loaders; or ``sorted``)."""
    items = []
    for folder, label in folder_to_label.items():
        class_dir = os.path.join(image_dir, folder)
        items.extend(
            Datum(impath=os.path.join(class_dir, name), label=label, classname=classnames[label])
            for name in list_images(class_dir, order)
        )
    return items


class ImageNetVariant(DatasetBase):
    """A test-only ImageNet variant: ``<DATASET.ROOT>/<dataset_dir>/{<image_subdir>/, classnames.txt}``.

    ``train_x`` and ``test`` are the same items (CoOp). Without the variant's own ``classnames.txt``, the one
    in ``<DATASET.ROOT>/imagenet/`` is used.
    """

    dataset_dir: str = ""
    image_subdir: str = ""
    layout: str = ""

    def __init__(self, cfg) -> None:
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, self.image_subdir)
        if not os.path.isdir(self.image_dir):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected images in {self.image_dir} ({DATASETS_MD}; layout: {self.layout})"
            )
        wnid_to_name = read_classnames(self.find_classnames_file(root))
        self.imagenet_wnids = list(wnid_to_name)
        folder_to_wnid = self.class_folders(self.imagenet_wnids)
        imagenet_label = {wnid: label for label, wnid in enumerate(self.imagenet_wnids)}
        self.imagenet_labels = [imagenet_label[wnid] for wnid in folder_to_wnid.values()]
        classnames = [wnid_to_name[wnid] for wnid in folder_to_wnid.values()]
        folder_to_label = {folder: label for label, folder in enumerate(folder_to_wnid)}
        order = check_image_order(cfg.DATASET.get("IMAGE_ORDER", "filesystem"))
        data = read_class_folders(self.image_dir, folder_to_label, classnames, order)
        super().__init__(train_x=data, test=data)

    def find_classnames_file(self, root: str) -> str:
        """The variant's ``classnames.txt``, else ImageNet's, else an error naming both."""
        own = os.path.join(self.dataset_dir, CLASSNAMES_FILE)
        if os.path.isfile(own):
            return own
        shared = os.path.join(root, IMAGENET_DIR, CLASSNAMES_FILE)
        if os.path.isfile(shared):
            print(f"{type(self).__name__}: {own} not found; using {shared}")
            return shared
        raise FileNotFoundError(
            f"{type(self).__name__}: expected ImageNet's class names in {own} (copy "
            f"<root>/{IMAGENET_DIR}/{CLASSNAMES_FILE} there; {DATASETS_MD})"
        )

    def class_folders(self, imagenet_wnids: list[str]) -> dict[str, str]:
        """``folder -> wnid`` in label order; by default the sorted wnid folders of ``image_dir``."""
        known = set(imagenet_wnids)
        folders = list_subfolders(self.image_dir)
        unknown = [folder for folder in folders if folder not in known]
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: folder {unknown[0]!r} in {self.image_dir} is not a wnid of "
                f"{CLASSNAMES_FILE}"
            )
        return {folder: folder for folder in folders}
