"""ImageNet-1k in CoOp's layout: ``imagenet/{images/train/<wnid>/, images/val/<wnid>/, classnames.txt}``.

The val set is the test set and also serves as validation (CoOp). Labels follow the sorted wnid folders of
``train/``; class names come from ``classnames.txt`` (CLIP's names). Each folder's images are taken in the
order the file system lists them, as CoOp's ``listdir_nohidden`` does (``DATASET.IMAGE_ORDER filesystem``),
so the few-shot picks of a seed are CoOp's on the same disk; ``sorted`` sorts them by name instead. The
full listing is cached in ``imagenet/preprocessed.pkl`` (``{"train": [...], "test": [...]}``, as CoOp's, so
either toolbox reads the other's) and rebuilt if its images are gone (data moved); it is unpickled admitting
only ``Datum`` and builtin types (``fileio.safe_pickle``). With ``sorted``, the cached lists are sorted too.
Few-shot caches hold only ``train``. ILSVRC2012's own val layout (the JPEGs directly in ``images/val/``) is
refused: CoOp's layout has one folder per wnid there too.
"""
import os
import pickle

from dassl.data.datasets import DATASET_REGISTRY, Datum

from fileio.atomic import write_atomically
from fileio.safe_pickle import UnsafePickleError, load_datum_pickle

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
            if self.image_order == "sorted":
                return sorted_items(cached["train"]), None, sorted_items(cached["test"])
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
        if not val_wnids:
            loose = len(base.list_images(val_dir))
            found = f"{loose} files directly in it (ILSVRC2012's val layout)" if loose else "nothing in it"
            raise ValueError(
                f"ImageNet: {val_dir} has no class folders but {found}; expected "
                f"{os.path.join(val_dir, '<wnid>', '<image>.JPEG')}, one folder per wnid as in train/ "
                f"({base.DATASETS_MD})"
            )
        unknown = [wnid for wnid in val_wnids if wnid not in wnid_to_label]
        if unknown:
            raise ValueError(f"ImageNet: folder {unknown[0]!r} in {val_dir} has no counterpart in {train_dir}")
        train = read_class_folders(train_dir, wnid_to_label, classnames, self.image_order)
        val_labels = {wnid: wnid_to_label[wnid] for wnid in val_wnids}
        test = read_class_folders(val_dir, val_labels, classnames, self.image_order)
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
            cached = load_datum_pickle(self.preprocessed)
            train, test = cached["train"], cached["test"]
        except UnsafePickleError:
            raise
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


def sorted_items(items: list[Datum]) -> list[Datum]:
    """Items by label, then image path: the listing ``DATASET.IMAGE_ORDER sorted`` gives."""
    return sorted(items, key=lambda item: (item.label, item.impath))
