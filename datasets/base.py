"""Shared machinery for datasets stored in CoOp's on-disk layout (CoOp's DATASETS.md).

CoOp (Zhou et al., IJCV 2022) gives every dataset a fixed split file ``split_zhou_<Name>.json`` (lists of
``[image path relative to the image folder, label, class name]`` under ``train``, ``val`` and ``test``),
samples K images per class for the K-shot protocol (cached in ``split_fewshot/shot_{K}-seed_{S}.pkl``), and
for the base-to-new protocol (CoCoOp) keeps the lower (``base``: the first ceil(n/2) sorted labels) or upper
(``new``) half of the classes, relabelled from 0. Those steps live here once; a dataset file only says where
its images are and how to build its split when the split file is missing.

Choices beyond CoOp's code, each recorded where it is made:
- Building the split (when its file is missing) and the few-shot draw run in one block in which Python's
  ``random`` is seeded with ``cfg.SEED``; the previous state is restored afterwards. In CoOp's ``train.py``
  nothing draws from ``random`` between ``set_random_seed`` and building the dataset, so the same seed gives
  the same split and the same few-shot images as CoOp (a split generated in the same run consumes the
  stream before the few-shot draw, as in CoOp); here the result no longer depends on what ran before.
- Few-shot caches are unpickled admitting only ``Datum`` and builtin types (``fileio.safe_pickle``); a file
  naming anything else is refused, not rebuilt, so the user learns that it was tampered with.
- A cached few-shot split that names items absent from the current split (data moved, split replaced, class
  renamed) or cannot be unpickled is rebuilt, with a message, instead of failing later at image-reading time;
  with the seeding above, the rebuilt split holds the same images whenever the split itself is unchanged.
- When a class has fewer images than NUM_SHOTS, all of them are used (Dassl's rule) and a warning naming the
  classes is printed (stdout, which Dassl's logger writes to ``log.txt``).
- Listing order (``DATASET.IMAGE_ORDER``): class folders are always sorted (labels follow them, as in CoOp);
  the images of a folder are taken in the order the file system lists them (``os.listdir``, CoOp's
  ``listdir_nohidden``) by default, which is what makes generated splits and few-shot picks equal CoOp's on
  the same disk. That order can differ between file systems (and copies of a dataset); ``sorted`` sorts the
  names instead, so results do not depend on the file system, at the cost of CoOp parity. Existing caches
  (``split_zhou_*.json``, ``preprocessed.pkl``, ``split_fewshot``) fix the items whichever order is set.
- ``DATASET.SKIP_UNREADABLE_IMAGES`` (off by default, so a damaged file is an error naming it): every image
  of the few-shot train, val and test sets is decoded once before training and the unreadable ones are
  dropped and counted; a class may then have fewer than K shots.
- Split files and caches are written atomically (temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

from dassl.data.datasets import Datum, DatasetBase
from PIL import Image

from fileio.atomic import write_atomically
from fileio.safe_pickle import UnsafePickleError, load_datum_pickle

SPLIT_NAMES = ("train", "val", "test")
SPLIT_FEWSHOT_DIRNAME = "split_fewshot"
MAX_VAL_SHOTS = 4  # CoOp: the few-shot validation set holds min(NUM_SHOTS, 4) images per class
SUBSAMPLE_CHOICES = ("all", "base", "new")
IMAGE_ORDERS = ("filesystem", "sorted")  # DATASET.IMAGE_ORDER: os.listdir order (CoOp's) or sorted names
DATASETS_MD = "see CoOp's DATASETS.md"

Split = tuple[list[Datum], list[Datum], list[Datum]]


def checked_datum(impath: str, label: int, classname: str, where: str) -> Datum:
    """A ``Datum`` for an image that must exist; ``where`` names the entry that referred to it."""
    if not os.path.isfile(impath):
        raise FileNotFoundError(f"{where}: image {impath} does not exist")
    return Datum(impath=impath, label=label, classname=classname)


def rename_classes(items: Iterable[Datum], new_cnames: dict[str, str]) -> list[Datum]:
    """Replace class names found in ``new_cnames`` (CoOp's per-dataset renaming tables)."""
    return [
        Datum(impath=item.impath, label=item.label, domain=item.domain, classname=new_cnames[item.classname])
        if item.classname in new_cnames
        else item
        for item in items
    ]


def read_split(filepath: str, path_prefix: str) -> Split:
    """Read a ``split_zhou_*.json`` file; image paths in it are relative to ``path_prefix``.

    Raises with the first entry whose image does not exist, or that is not ``[path, label, class name]``, and
    when the labels are not the integers 0..n-1 with one class name each (``check_labels``).
    """
    print(f"Reading split from {filepath}")
    try:
        with open(filepath) as file:
            split = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{filepath}: not valid JSON ({error})") from None
    if not isinstance(split, dict) or any(not isinstance(split.get(name), list) for name in SPLIT_NAMES):
        raise ValueError(
            f"{filepath}: expected a JSON object with lists 'train', 'val' and 'test' of "
            "[image path, label, class name]"
        )
    data = tuple(_entries_to_data(split[name], path_prefix, f"{filepath}: {name}") for name in SPLIT_NAMES)
    check_labels(dict(zip(SPLIT_NAMES, data)), filepath)
    return data


def check_labels(splits: dict[str, Sequence[Datum]], where: str) -> None:
    """Refuse labels that are not 0..n-1 (each used) or a label carrying two class names; ``where`` names the file."""
    names: dict[int, tuple[str, str]] = {}
    for split_name, items in splits.items():
        for index, item in enumerate(items):
            first = names.setdefault(item.label, (item.classname, f"{split_name}[{index}]"))
            if first[0] != item.classname:
                raise ValueError(f"{where}: label {item.label} has two class names, {first[0]!r} ({first[1]}) and "
                                 f"{item.classname!r} ({split_name}[{index}]); expected one class name per label")
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        extra = sorted(label for label in names if not 0 <= label < len(names))
        raise ValueError(f"{where}: labels must be 0..{len(names) - 1} for {len(names)} classes, but label "
                         f"{missing[0]} is unused and label {extra[0]} ({names[extra[0]][1]}) is out of range")


def _entries_to_data(entries: list, path_prefix: str, where: str) -> list[Datum]:
    items = []
    for index, entry in enumerate(entries):
        try:
            relpath, label, classname = entry
        except (TypeError, ValueError):
            raise ValueError(f"{where}[{index}] = {entry!r} is not [image path, label, class name]") from None
        if isinstance(label, bool) or not isinstance(label, int):
            raise ValueError(f"{where}[{index}] = {entry!r}: the label must be an integer, got {label!r}")
        impath = os.path.join(path_prefix, relpath)
        items.append(checked_datum(impath, label, classname, f"{where}[{index}] ({relpath!r})"))
    return items


def save_split(
    train: Sequence[Datum], val: Sequence[Datum], test: Sequence[Datum], filepath: str, path_prefix: str
) -> None:
    """Write a split in CoOp's ``split_zhou_*.json`` format, paths relative to ``path_prefix``."""

    def entries(items: Sequence[Datum]) -> list:
        return [[_relative_path(item.impath, path_prefix), item.label, item.classname] for item in items]

    split = {"train": entries(train), "val": entries(val), "test": entries(test)}
    write_atomically(filepath, lambda file: json.dump(split, file, indent=4, separators=(",", ": ")))
    print(f"Saved split to {filepath}")


def _relative_path(impath: str, path_prefix: str) -> str:
    relpath = os.path.relpath(impath, path_prefix)
    if relpath.startswith(os.pardir):
        raise ValueError(f"image {impath} is not under the split's image folder {path_prefix}")
    return relpath


def split_trainval(trainval: Sequence[Datum], p_val: float = 0.2) -> tuple[list[Datum], list[Datum]]:
    """Hold out round(n * p_val) images of every class for validation (CoOp; uses Python's ``random``)."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    by_label = defaultdict(list)
    for item in trainval:
        by_label[item.label].append(item)
    train, val = [], []
    for label, items in by_label.items():
        n_val = round(len(items) * p_val)
        if n_val == 0:
            raise ValueError(
                f"class {items[0].classname!r} (label {label}) has {len(items)} images: too few to hold "
                f"out {p_val:.0%} for validation"
            )
        random.shuffle(items)
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val


def split_per_class(
    images_by_class: dict[int, tuple[str, list[str]]], p_trn: float = 0.5, p_val: float = 0.2
) -> Split:
    """Split each class's images ``label -> (class name, paths)`` into train/val/test (CoOp's 50/20/30):
    every class's paths, in the order given, are shuffled with Python's ``random``, then cut."""
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    train, val, test = [], [], []
    for label, (classname, impaths) in images_by_class.items():
        impaths = list(impaths)
        random.shuffle(impaths)
        n_train = round(len(impaths) * p_trn)
        n_val = round(len(impaths) * p_val)
        if n_train == 0 or n_val == 0 or len(impaths) - n_train - n_val == 0:
            raise ValueError(
                f"class {classname!r} has {len(impaths)} images: too few for a {p_trn:.0%}/{p_val:.0%}/"
                f"{1 - p_trn - p_val:.0%} train/val/test split"
            )
        parts = (impaths[:n_train], impaths[n_train : n_train + n_val], impaths[n_train + n_val :])
        for split, paths in zip((train, val, test), parts):
            split.extend(Datum(impath=path, label=label, classname=classname) for path in paths)
    return train, val, test


def list_subfolders(folder: str) -> list[str]:
    """Sorted names of the non-hidden subfolders of ``folder``."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def check_image_order(order: str) -> str:
    if order not in IMAGE_ORDERS:
        raise ValueError(f"DATASET.IMAGE_ORDER must be one of {IMAGE_ORDERS}, got {order!r}")
    return order


def list_images(folder: str, order: str = "filesystem") -> list[str]:
    """Names of the non-hidden entries of ``folder``, in ``os.listdir`` order (CoOp's ``listdir_nohidden``)
    or sorted (``order="sorted"``)."""
    names = [name for name in os.listdir(folder) if not name.startswith(".")]
    return sorted(names) if check_image_order(order) == "sorted" else names


def read_and_split_data(
    image_dir: str,
    p_trn: float = 0.5,
    p_val: float = 0.2,
    ignored: Sequence[str] = (),
    new_cnames: dict[str, str] | None = None,
    order: str = "filesystem",
) -> Split:
    """Split an ``image_dir/<class folder>/<image>`` tree per class as CoOp's ``read_and_split_data``:
    labels follow the sorted folder names, each folder's images are listed in ``order``."""
    folders = [name for name in list_subfolders(image_dir) if name not in ignored]
    new_cnames = new_cnames or {}
    images_by_class = {
        label: (
            new_cnames.get(folder, folder),
            [os.path.join(image_dir, folder, name) for name in list_images(os.path.join(image_dir, folder), order)],
        )
        for label, folder in enumerate(folders)
    }
    return split_per_class(images_by_class, p_trn, p_val)


def subsample_classes(*args: Sequence[Datum], subsample: str = "all") -> list[list[Datum]] | tuple:
    """Keep the base (first ceil(n/2) sorted labels of ``args[0]``) or new (the rest) classes, relabelled
    from 0, in every data source of ``args``; ``all`` returns them unchanged (CoCoOp's base-to-new split)."""
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be one of {SUBSAMPLE_CHOICES}, got {subsample!r}")
    if subsample == "all":
        return args
    labels = sorted({item.label for item in args[0]})
    half = math.ceil(len(labels) / 2)
    selected = labels[:half] if subsample == "base" else labels[half:]
    relabel = {old: new for new, old in enumerate(selected)}
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    return [
        [
            Datum(impath=item.impath, label=relabel[item.label], domain=item.domain, classname=item.classname)
            for item in items
            if item.label in relabel
        ]
        for items in args
    ]


def load_matlab(path: str, purpose: str) -> dict[str, Any]:
    """``scipy.io.loadmat(path)``; scipy is needed only to build a split from the original .mat files."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ImportError(f"{purpose} reads {path}, which needs scipy (pip install scipy)") from None
    return loadmat(path)


@contextlib.contextmanager
def seeded_python_random(seed: int):
    """Seed Python's ``random`` inside the block and restore the previous state after it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def load_or_make_fewshot(
    dataset: DatasetBase,
    train: list[Datum],
    val: list[Datum] | None,
    num_shots: int,
    seed: int,
    split_fewshot_dir: str,
) -> tuple[list[Datum], list[Datum] | None]:
    """K-shot train (and min(K, 4)-shot val) sets, cached as ``split_fewshot/shot_{K}-seed_{S}.pkl``.

    ``val`` is None for datasets whose test set doubles as validation (ImageNet); the cache then holds only
    ``train``, as CoOp's does. ``num_shots < 1`` means all images. The draw uses Python's ``random`` as it
    stands (the caller seeds it); a negative seed caches nothing.
    """
    if num_shots < 1:
        return train, val
    name = type(dataset).__name__
    val_shots = min(num_shots, MAX_VAL_SHOTS)
    _warn_small_classes(train, num_shots, name, "training")
    if val is not None:
        _warn_small_classes(val, val_shots, name, "validation")
    cache_path = os.path.join(split_fewshot_dir, f"shot_{num_shots}-seed_{seed}.pkl")
    if seed >= 0 and os.path.exists(cache_path):
        cached = _read_fewshot_cache(cache_path, train, val)
        if cached is not None:
            return cached
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    if val is not None:
        val = dataset.generate_fewshot_dataset(val, num_shots=val_shots)
    if seed >= 0:
        _write_fewshot_cache(cache_path, train, val)
    return train, val


def _warn_small_classes(items: Sequence[Datum], num_shots: int, dataset_name: str, split_name: str) -> None:
    counts = Counter(item.label for item in items)
    short = sorted((label, n) for label, n in counts.items() if n < num_shots)
    if not short:
        return
    classnames = {item.label: item.classname for item in items}
    listed = ", ".join(f"{classnames[label]!r} ({n})" for label, n in short[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    print(
        f"Warning: {dataset_name}: {len(short)} of {len(counts)} classes have fewer than {num_shots} "
        f"{split_name} images; all their images are used: {listed}{more}"
    )


def _read_fewshot_cache(
    cache_path: str, train: list[Datum], val: list[Datum] | None
) -> tuple[list[Datum], list[Datum] | None] | None:
    try:
        cached = load_datum_pickle(cache_path)
        cached_train, cached_val = cached["train"], cached.get("val")
    except UnsafePickleError:
        raise
    except Exception as error:  # any unreadable cache is rebuilt, never trusted
        print(f"Warning: could not read few-shot cache {cache_path} ({error!r}); rebuilding it")
        return None
    if not _is_subset(cached_train, train) or (val is not None and not _is_subset(cached_val, val)):
        print(f"Warning: few-shot cache {cache_path} names images outside the current split; rebuilding it")
        return None
    print(f"Loading preprocessed few-shot data from {cache_path}")
    return cached_train, (cached_val if val is not None else None)


def _is_subset(cached: list[Datum] | None, current: Sequence[Datum]) -> bool:
    if cached is None:
        return False
    known = {(item.impath, item.label, item.classname) for item in current}
    return all((item.impath, item.label, item.classname) in known for item in cached)


def _write_fewshot_cache(cache_path: str, train: list[Datum], val: list[Datum] | None) -> None:
    data = {"train": train} if val is None else {"train": train, "val": val}
    print(f"Saving preprocessed few-shot data to {cache_path}")
    try:
        write_atomically(cache_path, lambda file: pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL), True)
    except OSError as error:
        print(f"Warning: could not write few-shot cache {cache_path} ({error}); continuing without it")


def unreadable_reason(path: str) -> str | None:
    """Why ``path`` cannot be decoded as an image (None when it can): the whole file is decoded."""
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return str(error) or type(error).__name__
    return None


def drop_unreadable_images(splits: dict[str, list[Datum]]) -> dict[str, list[Datum]]:
    """``DATASET.SKIP_UNREADABLE_IMAGES``: decode every image once, drop those that fail, say how many and which."""
    kept, dropped = {}, []
    reasons: dict[str, str | None] = {}
    for name, items in splits.items():
        kept[name] = []
        for item in items:
            if item.impath not in reasons:
                reasons[item.impath] = unreadable_reason(item.impath)
            if reasons[item.impath] is None:
                kept[name].append(item)
            else:
                dropped.append((name, item.impath))
    if dropped:
        per_split = ", ".join(f"{name} {sum(1 for s, _ in dropped if s == name)}" for name in splits)
        examples = "; ".join(f"{path} ({reasons[path]})" for _, path in dropped[:3])
        print(f"Skipped {len(dropped)} unreadable image(s) (DATASET.SKIP_UNREADABLE_IMAGES; {per_split}): {examples}")
    return kept


class CoOpStyleDataset(DatasetBase):
    """A dataset in CoOp's layout: ``<DATASET.ROOT>/<dataset_dir>/<image folder>`` plus a split file.

    Subclasses set the class attributes and, to build a split when the split file is missing, implement
    ``make_split``. ``read_or_make_split`` may be overridden by datasets with their own split files;
    returning ``val=None`` makes the test set double as validation (ImageNet).
    """

    dataset_dir: str = ""  # folder under DATASET.ROOT
    image_subdirs: tuple[str, ...] = ("images",)  # image folder; the first is CoOp's, later ones accepted too
    split_filename: str = ""  # e.g. "split_zhou_OxfordPets.json"; split paths are relative to image_dir
    class_renames: dict[str, str] = {}  # CoOp's renaming of class names, applied to every split
    layout: str = ""  # expected layout, for error messages

    def __init__(self, cfg) -> None:
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        self.image_dir = self.find_image_dir()
        self.split_path = os.path.join(self.dataset_dir, self.split_filename) if self.split_filename else ""
        self.split_fewshot_dir = os.path.join(self.dataset_dir, SPLIT_FEWSHOT_DIRNAME)
        self.image_order = check_image_order(cfg.DATASET.get("IMAGE_ORDER", "filesystem"))

        # one stream seeded with SEED, as CoOp's train.py leaves it: the split (if built) then the few shots
        with seeded_python_random(cfg.SEED) if cfg.SEED >= 0 else contextlib.nullcontext():
            train, val, test = self.read_or_make_split()
            train, val = load_or_make_fewshot(
                self, train, val, cfg.DATASET.NUM_SHOTS, cfg.SEED, self.split_fewshot_dir
            )
        subsample = cfg.DATASET.get("SUBSAMPLE_CLASSES", "all")
        if val is None:
            train, test = subsample_classes(train, test, subsample=subsample)
            val = test
        else:
            train, val, test = subsample_classes(train, val, test, subsample=subsample)
        if cfg.DATASET.get("SKIP_UNREADABLE_IMAGES", False):
            train, val, test = drop_unreadable_images({"train": train, "val": val, "test": test}).values()
        super().__init__(train_x=train, val=val, test=test)

    def find_image_dir(self) -> str:
        """The first existing folder of ``image_subdirs``; an error naming the expected one otherwise."""
        for subdir in self.image_subdirs:
            path = os.path.normpath(os.path.join(self.dataset_dir, subdir))
            if os.path.isdir(path):
                return path
        expected = os.path.normpath(os.path.join(self.dataset_dir, self.image_subdirs[0]))
        raise FileNotFoundError(
            f"{type(self).__name__}: expected images in {expected} ({DATASETS_MD}; layout: {self.layout})"
        )

    def read_or_make_split(self) -> tuple[list[Datum], list[Datum] | None, list[Datum]]:
        """Read the split file, or build the split with ``make_split`` and save it; ``class_renames`` is
        applied either way (so a split file written with the raw folder names still gets CoOp's names)."""
        if os.path.exists(self.split_path):
            split = read_split(self.split_path, self.image_dir)
            return tuple(rename_classes(items, self.class_renames) for items in split)
        split = tuple(rename_classes(items, self.class_renames) for items in self.make_split())
        save_split(*split, self.split_path, self.image_dir)
        return split

    def make_split(self) -> Split:
        """Build train/val/test from the dataset's original files (only when the split file is missing)."""
        raise FileNotFoundError(
            f"{type(self).__name__}: split file {self.split_path} not found; download "
            f"{self.split_filename} ({DATASETS_MD})"
        )

    def split_class_folders(self, ignored: Sequence[str] = ()) -> Split:
        """CoOp's ``read_and_split_data`` over ``image_dir``'s class folders, in ``DATASET.IMAGE_ORDER``."""
        return read_and_split_data(self.image_dir, ignored=ignored, order=self.image_order)

    def require_file(self, relpath: str) -> str:
        """Path of a file of the dataset that must exist, or an error naming it and the layout."""
        path = os.path.join(self.dataset_dir, relpath)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected {path} ({DATASETS_MD}; layout: {self.layout})"
            )
        return path
