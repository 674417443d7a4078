"""Miniature copies of each dataset's on-disk layout (CoOp's DATASETS.md) and of an image-text corpus.

Nothing can be downloaded in tests, so the loaders are proven on fixtures that reproduce every file a loader
reads, with the same folder names and the same split-file formats: ``split_zhou_*.json`` (CoOp's format,
written independently of ``datasets.base``), ImageNet's ``classnames.txt``, the aircraft variant lists,
the Pets annotations, the SUN397 partitions, the UCF101 lists and, when scipy is installed, the Flowers and
Cars ``.mat`` files (so a missing split can be rebuilt as CoOp does). Images are small JPEGs whose colour
depends on the class. Class names are real ones from each dataset (then ``class_<i>``), in CoOp's spelling.

Run ``python -m datasets.fixtures --root DIR`` to write every fixture and a corpus in each format.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from .caltech101 import IGNORED_FOLDERS as CALTECH_IGNORED
from .caltech101 import NEW_CNAMES as CALTECH_NAMES
from .eurosat import NEW_CNAMES as EUROSAT_NAMES

P_TRAIN, P_VAL = 0.5, 0.2  # CoOp's per-class split of datasets without an official one
IMAGE_SIZE = 16

CALTECH_FOLDERS = ["airplanes", "Faces", "Leopards", "Motorbikes", "accordion", "anchor", "ant", "barrel"]
PETS_BREEDS = ["Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "Bengal", "Birman"]
CARS_CLASSES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012", "Acura TL Type-S 2008"]
FLOWERS_NAMES = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold"]
FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad"]
AIRCRAFT_VARIANTS = ["707-320", "727-200", "737-200", "A300B4", "Cessna 172", "F-16A/B"]
SUN_CATEGORIES = ["a/abbey", "a/airplane_cabin", "a/apartment_building/outdoor", "b/bakery/shop", "b/bathroom"]
DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly", "bumpy", "chequered"]
UCF_ACTIONS = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "YoYo"]
IMAGENET_CLASSES = [
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
    ("n01496331", "electric ray"),
    ("n01498041", "stingray"),
    ("n01514668", "rooster"),
    ("n01514859", "hen"),
    ("n01518878", "ostrich"),
]


@dataclass
class Fixture:
    """What a fixture holds: the loader's expected output with NUM_SHOTS=0 and all classes."""

    name: str
    dataset_dir: str
    classnames: list[str]  # CoOp's class names, in label order
    split_sizes: dict[str, int]  # number of train / val / test items
    imagenet_labels: list[int] = field(default_factory=list)  # ImageNet variants: label -> ImageNet label


@dataclass
class CorpusFixture:
    """A miniature corpus: where it is and which of its entries are broken."""

    source: str  # manifest file or folder of tar shards
    ids: list[str]  # every entry's id, in corpus order
    corrupt_ids: list[str]
    missing_ids: list[str]


class _Writer:
    """Writes class-coloured images and text files under one root."""

    def __init__(self, root: str, seed: int, image_size: int) -> None:
        self.root = root
        self.rng = np.random.default_rng(seed)
        self.image_size = image_size
        self.palette = self.rng.integers(0, 256, size=(4096, 3))

    def image_bytes(self, label: int, image_format: str = "JPEG") -> bytes:
        """An encoded image: the class colour plus a little noise."""
        noise = self.rng.integers(-20, 21, size=(self.image_size, self.image_size, 3))
        pixels = np.clip(self.palette[label % len(self.palette)] + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=image_format)
        return buffer.getvalue()

    def image(self, relpath: str, label: int) -> str:
        image_format = "PNG" if relpath.lower().endswith(".png") else "JPEG"
        return self.binary(relpath, self.image_bytes(label, image_format))

    def binary(self, relpath: str, data: bytes) -> str:
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
        return path

    def text(self, relpath: str, lines: list[str]) -> str:
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write("".join(line + "\n" for line in lines))
        return path

    def json(self, relpath: str, data) -> str:
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            json.dump(data, file, indent=4)
        return path


def _names(seed_names: list[str], num_classes: int) -> list[str]:
    return (seed_names + [f"class_{i}" for i in range(len(seed_names), num_classes)])[:num_classes]


def _split_counts(images_per_class: int) -> tuple[int, int, int]:
    n_train = round(images_per_class * P_TRAIN)
    n_val = round(images_per_class * P_VAL)
    return n_train, n_val, images_per_class - n_train - n_val


def _coop_split(relpaths: list[str], labels: list[int], classnames: list[str], images_per_class: int) -> dict:
    """``{"train", "val", "test"}`` entries ``[relpath, label, classname]``, consecutive images per class."""
    n_train, n_val, _ = _split_counts(images_per_class)
    split = {"train": [], "val": [], "test": []}
    for index, (relpath, label) in enumerate(zip(relpaths, labels)):
        position = index % images_per_class
        name = "train" if position < n_train else "val" if position < n_train + n_val else "test"
        split[name].append([relpath, label, classnames[label]])
    return split


def _sizes(split: dict) -> dict[str, int]:
    return {name: len(entries) for name, entries in split.items()}


def _folder_dataset(
    w: _Writer,
    dataset_dir: str,
    image_subdir: str,
    folders: list[str],
    classnames_by_folder: dict[str, str],
    split_filename: str,
    images_per_class: int,
    with_split: bool,
    name: str,
) -> Fixture:
    """``<image_subdir>/<folder>/<image>`` with labels in sorted folder order (CoOp's read_and_split_data)."""
    folders = sorted(folders)
    classnames = [classnames_by_folder.get(folder, folder) for folder in folders]
    relpaths, labels = [], []
    for label, folder in enumerate(folders):
        for k in range(images_per_class):
            relpath = f"{folder}/{folder}_{k + 1:04d}.jpg"
            w.image(os.path.join(dataset_dir, image_subdir, relpath), label)
            relpaths.append(relpath)
            labels.append(label)
    split = _coop_split(relpaths, labels, classnames, images_per_class)
    if with_split:
        w.json(os.path.join(dataset_dir, split_filename), split)
    return Fixture(name, os.path.join(w.root, dataset_dir), classnames, _sizes(split))


def _caltech101(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    folders = _names(CALTECH_FOLDERS, num_classes)
    fixture = _folder_dataset(
        w, "caltech-101", "101_ObjectCategories", folders, CALTECH_NAMES, "split_zhou_Caltech101.json",
        images_per_class, with_split, "Caltech101",
    )
    for folder in CALTECH_IGNORED:  # present on disk, never part of the dataset
        for k in range(images_per_class):
            w.image(f"caltech-101/101_ObjectCategories/{folder}/image_{k + 1:04d}.jpg", 0)
    return fixture


def _dtd(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    return _folder_dataset(
        w, "dtd", "images", _names(DTD_CLASSES, num_classes), {}, "split_zhou_DescribableTextures.json",
        images_per_class, with_split, "DescribableTextures",
    )


def _eurosat(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    return _folder_dataset(
        w, "eurosat", "2750", _names(list(EUROSAT_NAMES), num_classes), EUROSAT_NAMES, "split_zhou_EuroSAT.json",
        images_per_class, with_split, "EuroSAT",
    )


def _food101(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    folders = _names(FOOD_CLASSES, num_classes)
    w.text("food-101/meta/classes.txt", folders)
    return _folder_dataset(
        w, "food-101", "images", folders, {}, "split_zhou_Food101.json", images_per_class, with_split, "Food101"
    )


def _oxford_pets(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    breeds = _names(PETS_BREEDS, num_classes)
    classnames = [breed.lower() for breed in breeds]
    n_train, n_val, _ = _split_counts(images_per_class)
    relpaths, labels, trainval_lines, test_lines = [], [], [], []
    for label, breed in enumerate(breeds):
        species = 1 if breed[0].isupper() else 2
        for k in range(images_per_class):
            imname = f"{breed}_{k + 1}"
            w.image(f"oxford_pets/images/{imname}.jpg", label)
            relpaths.append(imname + ".jpg")
            labels.append(label)
            line = f"{imname} {label + 1} {species} {label + 1}"
            (trainval_lines if k < n_train + n_val else test_lines).append(line)
    w.text("oxford_pets/annotations/trainval.txt", trainval_lines)
    w.text("oxford_pets/annotations/test.txt", test_lines)
    split = _coop_split(relpaths, labels, classnames, images_per_class)
    if with_split:
        w.json("oxford_pets/split_zhou_OxfordPets.json", split)
    return Fixture("OxfordPets", os.path.join(w.root, "oxford_pets"), classnames, _sizes(split))


def _savemat(path: str, data: dict) -> bool:
    """Write a .mat file when scipy is installed; False otherwise."""
    try:
        from scipy.io import savemat
    except ImportError:
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    savemat(path, data)
    return True


def _cars_annotations(fnames: list[str], labels: list[int]) -> np.ndarray:
    annotations = np.zeros((1, len(fnames)), dtype=[("fname", "O"), ("class", "O")])
    for index, (fname, label) in enumerate(zip(fnames, labels)):
        annotations[0, index] = (fname, np.array([[label + 1]], dtype=np.uint16))
    return annotations


def _stanford_cars(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    raw_names = _names(CARS_CLASSES, num_classes)
    classnames = [" ".join([name.split(" ")[-1], *name.split(" ")[:-1]]) for name in raw_names]
    n_train, n_val, _ = _split_counts(images_per_class)
    relpaths, labels = [], []
    by_folder = {"cars_train": ([], []), "cars_test": ([], [])}
    for label in range(num_classes):
        for k in range(images_per_class):
            folder = "cars_train" if k < n_train + n_val else "cars_test"
            fname = f"{len(by_folder[folder][0]) + 1:05d}.jpg"
            w.image(f"stanford_cars/{folder}/{fname}", label)
            relpaths.append(f"{folder}/{fname}")
            labels.append(label)
            by_folder[folder][0].append(fname)
            by_folder[folder][1].append(label)
    meta = np.empty((1, num_classes), dtype=object)
    meta[0, :] = raw_names
    root = os.path.join(w.root, "stanford_cars")
    _savemat(os.path.join(root, "devkit", "cars_meta.mat"), {"class_names": meta})
    annotation_files = {"cars_train": "devkit/cars_train_annos.mat", "cars_test": "cars_test_annos_withlabels.mat"}
    for folder, relpath in annotation_files.items():
        _savemat(os.path.join(root, relpath), {"annotations": _cars_annotations(*by_folder[folder])})
    split = _coop_split(relpaths, labels, classnames, images_per_class)
    if with_split:
        w.json("stanford_cars/split_zhou_StanfordCars.json", split)
    return Fixture("StanfordCars", root, classnames, _sizes(split))


def _oxford_flowers(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    classnames = [name.replace("_", " ") for name in _names(FLOWERS_NAMES, num_classes)]
    total = num_classes * images_per_class
    image_labels = [index % num_classes for index in range(total)]  # classes interleaved, as in the original
    relpaths = [f"image_{index + 1:05d}.jpg" for index in range(total)]
    for relpath, label in zip(relpaths, image_labels):
        w.image(f"oxford_flowers/jpg/{relpath}", label)
    w.json("oxford_flowers/cat_to_name.json", {str(label + 1): name for label, name in enumerate(classnames)})
    _savemat(os.path.join(w.root, "oxford_flowers", "imagelabels.mat"), {"labels": np.array([image_labels]) + 1})
    order = sorted(range(total), key=lambda index: image_labels[index])
    split = _coop_split([relpaths[i] for i in order], [image_labels[i] for i in order], classnames, images_per_class)
    if with_split:
        w.json("oxford_flowers/split_zhou_OxfordFlowers.json", split)
    return Fixture("OxfordFlowers", os.path.join(w.root, "oxford_flowers"), classnames, _sizes(split))


def _fgvc_aircraft(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    variants = _names(AIRCRAFT_VARIANTS, num_classes)
    n_train, n_val, _ = _split_counts(images_per_class)
    lines = {"train": [], "val": [], "test": []}
    for label, variant in enumerate(variants):
        for k in range(images_per_class):
            image_id = f"{1000000 + label * 1000 + k:07d}"
            w.image(f"fgvc_aircraft/images/{image_id}.jpg", label)
            name = "train" if k < n_train else "val" if k < n_train + n_val else "test"
            lines[name].append(f"{image_id} {variant}")
    w.text("fgvc_aircraft/variants.txt", variants)
    for name, split_lines in lines.items():
        w.text(f"fgvc_aircraft/images_variant_{name}.txt", split_lines)
    sizes = {name: len(split_lines) for name, split_lines in lines.items()}
    return Fixture("FGVCAircraft", os.path.join(w.root, "fgvc_aircraft"), variants, sizes)


def _sun397(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    categories = sorted(name if "/" in name else f"c/{name}" for name in _names(SUN_CATEGORIES, num_classes))
    classnames = [" ".join(category.split("/")[1:][::-1]) for category in categories]
    n_train, n_val, _ = _split_counts(images_per_class)
    relpaths, labels, training, testing = [], [], [], []
    for label, category in enumerate(categories):
        for k in range(images_per_class):
            relpath = f"{category}/sun_{label:03d}{k:04d}.jpg"
            w.image(f"sun397/SUN397/{relpath}", label)
            relpaths.append(relpath)
            labels.append(label)
            (training if k < n_train + n_val else testing).append("/" + relpath)
    w.text("sun397/ClassName.txt", ["/" + category for category in categories])
    w.text("sun397/Training_01.txt", training)
    w.text("sun397/Testing_01.txt", testing)
    split = _coop_split(relpaths, labels, classnames, images_per_class)
    if with_split:
        w.json("sun397/split_zhou_SUN397.json", split)
    return Fixture("SUN397", os.path.join(w.root, "sun397"), classnames, _sizes(split))


def _ucf101(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    actions = _names(UCF_ACTIONS, num_classes)
    actions = [action if action[0].isupper() else f"Class{index}" for index, action in enumerate(actions)]
    classnames = ["_".join(_camel_words(action)) for action in actions]
    n_train, n_val, _ = _split_counts(images_per_class)
    relpaths, labels, trainlist, testlist = [], [], [], []
    for label, (action, folder) in enumerate(zip(actions, classnames)):
        for k in range(images_per_class):
            video = f"v_{action}_g{k + 1:02d}_c01"
            w.image(f"ucf101/UCF-101-midframes/{folder}/{video}.jpg", label)
            relpaths.append(f"{folder}/{video}.jpg")
            labels.append(label)
            if k < n_train + n_val:
                trainlist.append(f"{action}/{video}.avi {label + 1}")
            else:
                testlist.append(f"{action}/{video}.avi")
    w.text("ucf101/ucfTrainTestlist/classInd.txt", [f"{i + 1} {action}" for i, action in enumerate(actions)])
    w.text("ucf101/ucfTrainTestlist/trainlist01.txt", trainlist)
    w.text("ucf101/ucfTrainTestlist/testlist01.txt", testlist)
    split = _coop_split(relpaths, labels, classnames, images_per_class)
    if with_split:
        w.json("ucf101/split_zhou_UCF101.json", split)
    return Fixture("UCF101", os.path.join(w.root, "ucf101"), classnames, _sizes(split))


def _camel_words(action: str) -> list[str]:
    words, current = [], ""
    for char in action:
        if char.isupper() and current:
            words.append(current)
            current = ""
        current += char
    return words + [current]


def _imagenet_classes(num_classes: int) -> list[tuple[str, str]]:
    extra = [(f"n9{i:07d}", f"class {i}") for i in range(len(IMAGENET_CLASSES), num_classes)]
    return (IMAGENET_CLASSES + extra)[:num_classes]


def _imagenet(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
    classes = _imagenet_classes(num_classes)
    n_val = max(1, images_per_class // 2)
    val_index = 0
    for label, (wnid, _) in enumerate(classes):
        for k in range(images_per_class):
            w.image(f"imagenet/images/train/{wnid}/{wnid}_{k + 1}.JPEG", label)
        for _ in range(n_val):
            val_index += 1
            w.image(f"imagenet/images/val/{wnid}/ILSVRC2012_val_{val_index:08d}.JPEG", label)
    w.text("imagenet/classnames.txt", [f"{wnid} {name}" for wnid, name in classes])
    sizes = {"train": num_classes * images_per_class, "val": num_classes * n_val, "test": num_classes * n_val}
    return Fixture("ImageNet", os.path.join(w.root, "imagenet"), [name for _, name in classes], sizes)


def _imagenet_variant(
    name: str, dataset_dir: str, image_subdir: str, subset: bool, folder_of: Callable[[int, str], str]
) -> Callable[[_Writer, int, int, bool], Fixture]:
    """A test-only variant; ``subset`` keeps every other ImageNet class (A/R), else all classes."""

    def build(w: _Writer, num_classes: int, images_per_class: int, with_split: bool) -> Fixture:
        all_classes = _imagenet_classes(2 * num_classes + 1 if subset else num_classes)
        labels = list(range(1, len(all_classes), 2)) if subset else list(range(num_classes))
        for label in labels:
            wnid = all_classes[label][0]
            for k in range(images_per_class):
                w.image(f"{dataset_dir}/{image_subdir}/{folder_of(label, wnid)}/{k:04d}.jpg", label)
        if subset:
            w.text(f"{dataset_dir}/{image_subdir}/README.txt", ["class folders are named by wnid"])
        w.text(f"{dataset_dir}/classnames.txt", [f"{wnid} {cname}" for wnid, cname in all_classes])
        total = len(labels) * images_per_class
        return Fixture(
            name,
            os.path.join(w.root, dataset_dir),
            [all_classes[label][1] for label in labels],
            {"train": total, "val": 0, "test": total},
            labels,
        )

    return build


FIXTURE_BUILDERS: dict[str, Callable[[_Writer, int, int, bool], Fixture]] = {
    "ImageNet": _imagenet,
    "Caltech101": _caltech101,
    "OxfordPets": _oxford_pets,
    "StanfordCars": _stanford_cars,
    "OxfordFlowers": _oxford_flowers,
    "Food101": _food101,
    "FGVCAircraft": _fgvc_aircraft,
    "SUN397": _sun397,
    "DescribableTextures": _dtd,
    "EuroSAT": _eurosat,
    "UCF101": _ucf101,
    "ImageNetV2": _imagenet_variant(
        "ImageNetV2", "imagenetv2", "imagenetv2-matched-frequency-format-val", False, lambda label, _: str(label)
    ),
    "ImageNetSketch": _imagenet_variant("ImageNetSketch", "imagenet-sketch", "images", False, lambda _, wnid: wnid),
    "ImageNetA": _imagenet_variant("ImageNetA", "imagenet-adversarial", "imagenet-a", True, lambda _, wnid: wnid),
    "ImageNetR": _imagenet_variant("ImageNetR", "imagenet-rendition", "imagenet-r", True, lambda _, wnid: wnid),
}


def build_fixture(
    name: str,
    root: str,
    num_classes: int = 4,
    images_per_class: int = 10,
    seed: int = 0,
    with_split: bool = True,
    image_size: int = IMAGE_SIZE,
) -> Fixture:
    """Write a miniature of dataset ``name`` (its ``DATASET.NAME``) under ``root`` (= ``DATASET.ROOT``).

    ``with_split=False`` leaves out the ``split_zhou_*.json`` file, so the loader must build it.
    """
    if name not in FIXTURE_BUILDERS:
        raise ValueError(f"no fixture for dataset {name!r}; known: {', '.join(FIXTURE_BUILDERS)}")
    if images_per_class < 4:
        raise ValueError(f"images_per_class must be at least 4 for a train/val/test split, got {images_per_class}")
    return FIXTURE_BUILDERS[name](_Writer(root, seed, image_size), num_classes, images_per_class, with_split)


def dataset_cfg(root: str, name: str, num_shots: int = 0, seed: int = 1, subsample: str = "all"):
    """A Dassl config (with this toolbox's keys) that builds dataset ``name`` from ``root``."""
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


def _caption(rng: np.random.Generator, index: int) -> str:
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    things = ["square", "circle", "dog", "house", "tree", "boat"]
    return f"a {rng.choice(colours)} {rng.choice(things)} number {index}"


def build_corpus_fixture(
    root: str,
    n: int = 20,
    fmt: str = "tsv",
    n_corrupt: int = 0,
    n_missing: int = 0,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    shard_size: int = 8,
) -> CorpusFixture:
    """Write an ``n``-entry image-text corpus under ``root``: a manifest (``tsv``: ``image_path<TAB>caption``
    with a header; ``csv``; ``jsonl`` with ``id``/``image``/``caption``) next to ``images/``, or (``tar``)
    webdataset shards ``shards/NNNN.tar`` of ``<key>.jpg`` + ``<key>.txt``. ``n_corrupt`` entries get
    undecodable images (garbage bytes or a truncated JPEG); ``n_missing`` entries have no image at all.
    """
    if fmt not in ("tsv", "csv", "jsonl", "tar"):
        raise ValueError(f"fmt must be tsv, csv, jsonl or tar, got {fmt!r}")
    if n_corrupt + n_missing > n:
        raise ValueError("n_corrupt + n_missing must not exceed n")
    w = _Writer(root, seed, image_size)
    broken = w.rng.permutation(n)[: n_corrupt + n_missing]
    corrupt, missing = set(broken[:n_corrupt].tolist()), set(broken[n_corrupt:].tolist())
    entries = []  # (key, image bytes or None, caption)
    for index in range(n):
        data = None if index in missing else w.image_bytes(index)
        if index in corrupt:  # half of them garbage, half a JPEG cut in two
            data = data[: len(data) // 2] if index % 2 else bytes(w.rng.integers(0, 256, size=64, dtype=np.uint8))
        entries.append((f"{index:06d}", data, _caption(w.rng, index)))
    source = _write_shards(root, entries, shard_size) if fmt == "tar" else _write_manifest(w, entries, fmt)
    ids = [key if fmt in ("jsonl", "tar") else f"images/{key}.jpg" for key, _, _ in entries]
    return CorpusFixture(
        source,
        ids,
        [ids[i] for i in sorted(corrupt)],
        [ids[i] for i in sorted(missing)],
    )


def _write_manifest(w: _Writer, entries: list, fmt: str) -> str:
    lines = {"tsv": ["image_path\tcaption"], "csv": ["image_path,caption"], "jsonl": []}[fmt]
    for key, data, caption in entries:
        relpath = f"images/{key}.jpg"
        if data is not None:
            w.binary(relpath, data)
        if fmt == "tsv":
            lines.append(f"{relpath}\t{caption}")
        elif fmt == "csv":
            lines.append(f'{relpath},"{caption}, photographed"')
        else:
            lines.append(json.dumps({"id": key, "image": relpath, "caption": caption}))
    return w.text(f"corpus.{fmt}", lines)


def _write_shards(root: str, entries: list, shard_size: int) -> str:
    folder = os.path.join(root, "shards")
    os.makedirs(folder, exist_ok=True)
    for shard_index, start in enumerate(range(0, len(entries), shard_size)):
        with tarfile.open(os.path.join(folder, f"{shard_index:04d}.tar"), "w") as tar:
            for key, data, caption in entries[start : start + shard_size]:
                members = [(f"{key}.txt", caption.encode())]
                if data is not None:
                    members.insert(0, (f"{key}.jpg", data))
                for member_name, payload in members:
                    info = tarfile.TarInfo(member_name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--root", "--out", dest="root", required=True,
                        help="folder to write the fixtures into (DATASET.ROOT)")
    parser.add_argument("--datasets", nargs="*", default=list(FIXTURE_BUILDERS), help="DATASET.NAMEs")
    parser.add_argument("--num-classes", type=int, default=4, help="classes per dataset")
    parser.add_argument("--images-per-class", type=int, default=10, help="images per class (at least 4)")
    parser.add_argument("--corpus-size", type=int, default=20, help="pairs of each corpus")
    parser.add_argument("--seed", type=int, default=0, help="seed of the images")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    for name in args.datasets:
        fixture = build_fixture(name, args.root, args.num_classes, args.images_per_class, args.seed)
        print(f"{name:20s} {fixture.dataset_dir}  classes={len(fixture.classnames)}  {fixture.split_sizes}")
    for fmt in ("tsv", "jsonl", "tar"):
        corpus = build_corpus_fixture(
            os.path.join(args.root, f"corpus_{fmt}"), args.corpus_size, fmt, n_corrupt=1, n_missing=1, seed=args.seed
        )
        print(f"{'corpus (' + fmt + ')':20s} {corpus.source}  entries={len(corpus.ids)}")


if __name__ == "__main__":
    main()
