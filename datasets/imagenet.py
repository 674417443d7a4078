"""ImageNet-1k in CoOp's layout: ``imagenet/{images/train/<wnid>/, images/val/<wnid>/, classnames.txt}``.

The val set is the test set and also serves as validation (CoOp). Labels follow the sorted wnid folders of
``train/``; class names come from ``classnames.txt`` (CLIP's names). The full listing is cached in
``imagenet/preprocessed.pkl`` (``{"train": [...], "test": [...]}``, as CoOp's) and rebuilt if its images
are gone (data moved). Few-shot caches hold only ``train``.
"""
import os
import pickle

from dassl.data.datasets import DATASET_REGISTRY, Datum

from fileio.atomic import write_atomically

from . import base
from .imagenet_folders import CLASSNAMES_FILE, read_class_folders, read_classnames


@DATASET_REGISTRY.register()
class ImageNet(base.CoOpStyleDataset):
    dataset_dir = "imagenet"
    image_subdirs = ("images",)
    layout = "imagenet/{images/train/<wnid>/, images/val/<wnid>/, classnames.txt}"

    read_classnames = staticmethod(read_classnames)

    def read_or_make_split(self) -> tuple[list[Datum], None, list[Datum]]:
        self.preprocessed = os.path.join(self.dataset_dir, "preprocessed.pkl")
        cached = self.read_preprocessed()
        if cached is not None:
            return cached["train"], None, cached["test"]
        wnid_to_name = read_classnames(self.require_file(CLASSNAMES_FILE))
        train_dir = self.require_split_dir("train")
        wnids = base.list_subfolders(train_dir)
        unknown = [wnid for wnid in wnids if wnid not in wnid_to_name]
        if unknown:
            raise ValueError(f"ImageNet: folder {unknown[0]!r} in {train_dir} is not in {CLASSNAMES_FILE}")
        wnid_to_label = {wnid: label for label, wnid in enumerate(wnids)}
        classnames = [wnid_to_name[wnid] for wnid in wnids]
        val_dir = self.require_split_dir("val")
        val_wnids = base.list_subfolders(val_dir)
        unknown = [wnid for wnid in val_wnids if wnid not in wnid_to_label]
        if unknown:
            raise ValueError(f"ImageNet: folder {unknown[0]!r} in {val_dir} has no counterpart in {train_dir}")
        train = read_class_folders(train_dir, wnid_to_label, classnames)
        test = read_class_folders(val_dir, {wnid: wnid_to_label[wnid] for wnid in val_wnids}, classnames)
        self.write_preprocessed({"train": train, "test": test})
        return train, None, test

    def require_split_dir(self, split: str) -> str:
        path = os.path.join(self.image_dir, split)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"ImageNet: expected {path} ({base.DATASETS_MD}; layout: {self.layout})")
        return path

    def read_preprocessed(self) -> dict | None:
        if not os.path.exists(self.preprocessed):
            return None
        try:
            with open(self.preprocessed, "rb") as file:
                cached = pickle.load(file)
            train, test = cached["train"], cached["test"]
        except Exception as error:  # an unreadable cache is rebuilt, never trusted
            print(f"Warning: could not read {self.preprocessed} ({error!r}); rebuilding it")
            return None
        if not all(os.path.isfile(items[0].impath) for items in (train, test) if items):
            print(f"Warning: {self.preprocessed} names images that no longer exist; rebuilding it")
            return None
        return cached

    def write_preprocessed(self, data: dict) -> None:
        try:
            write_atomically(self.preprocessed, lambda file: pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL),
                             binary=True)
        except OSError as error:
            print(f"Warning: could not write {self.preprocessed} ({error}); continuing without it")
