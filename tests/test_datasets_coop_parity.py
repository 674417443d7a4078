"""Item lists, generated splits and few-shot picks equal what CoOp's loaders give on the same disk.

The expected lists are derived here from CoOp's rules, re-implemented minimally and independently of
``datasets/`` (CoOp's ``datasets/*.py`` with Dassl's ``listdir_nohidden`` and ``generate_fewshot_dataset``):
``random.seed(SEED)`` once (CoOp's ``train.py``), then the split when its file is missing (class folders
sorted, each folder's images in ``os.listdir`` order, shuffled, cut 50/20/30; or the official trainval list
with 20% of every class held out), then K shots per class of train and min(K, 4) of val.

The file-system order question: ``os.listdir`` order depends on the file system (ext4 hashes names, tmpfs
lists newest first, ...). Each test runs twice: on the real listing of the fixture (whatever this file
system gives; expected lists come from ``os.listdir`` of the same fixture), and with ``os.listdir``
replaced by a fixed scrambled order that is certainly not sorted, so a loader that sorted the names, or
listed them some other way than CoOp, fails here on any file system.
"""
import hashlib
import json
import os
import pickle
import random
from collections import defaultdict

import pytest
from dassl.data.datasets import DATASET_REGISTRY, Datum

import datasets  # noqa: F401  (registers the datasets)
from datasets.fixtures import build_fixture, dataset_cfg

SEED, SHOTS = 2, 3
REAL_LISTDIR = os.listdir


@pytest.fixture(params=["real", "scrambled"])
def listing(request, monkeypatch):
    """``os.listdir`` as this file system gives it, or in an order fixed by a hash of the names."""
    if request.param == "scrambled":
        scrambled = lambda path=".": sorted(  # noqa: E731
            REAL_LISTDIR(path), key=lambda name: hashlib.md5(name.encode()).hexdigest()
        )
        monkeypatch.setattr(os, "listdir", scrambled)
    return request.param


# ---- CoOp's rules, minimal ----
def listdir_nohidden(path, sort=False):
    items = [name for name in os.listdir(path) if not name.startswith(".")]
    return sorted(items) if sort else items


def read_and_split_data(image_dir, ignored=(), new_cnames=None):
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    train, val, test = [], [], []
    for label, category in enumerate(categories):
        images = [os.path.join(image_dir, category, im) for im in listdir_nohidden(os.path.join(image_dir, category))]
        random.shuffle(images)
        n_train, n_val = round(len(images) * 0.5), round(len(images) * 0.2)
        name = (new_cnames or {}).get(category, category)
        train += [(im, label, name) for im in images[:n_train]]
        val += [(im, label, name) for im in images[n_train:n_train + n_val]]
        test += [(im, label, name) for im in images[n_train + n_val:]]
    return train, val, test


def split_trainval(trainval, p_val=0.2):
    tracker = defaultdict(list)
    for index, item in enumerate(trainval):
        tracker[item[1]].append(index)
    train, val = [], []
    for indices in tracker.values():
        n_val = round(len(indices) * p_val)
        random.shuffle(indices)
        for n, index in enumerate(indices):
            (val if n < n_val else train).append(trainval[index])
    return train, val


def fewshot(items, num_shots):
    tracker = defaultdict(list)
    for item in items:
        tracker[item[1]].append(item)
    out = []
    for group in tracker.values():
        out += random.sample(group, num_shots) if len(group) >= num_shots else group
    return out


def coop_flow(make_split):
    """CoOp's order of draws: seed, split (if built), train shots, val shots."""
    random.seed(SEED)
    train, val, test = make_split()
    return fewshot(train, SHOTS), fewshot(val, min(SHOTS, 4)), test


def lines(path):
    with open(path) as file:
        return [line.strip() for line in file if line.strip()]


def pets_split(root):
    def read(name):
        items = []
        for line in lines(f"{root}/oxford_pets/annotations/{name}"):
            imname, label = line.split(" ")[:2]
            items.append((f"{root}/oxford_pets/images/{imname}.jpg", int(label) - 1, imname.rsplit("_", 1)[0].lower()))
        return items
    return (*split_trainval(read("trainval.txt")), read("test.txt"))


def sun_split(root):
    cname2lab = {c[1:]: i for i, c in enumerate(lines(f"{root}/sun397/ClassName.txt"))}

    def read(name):
        items = []
        for line in lines(f"{root}/sun397/{name}"):
            category = os.path.dirname(line[1:])
            items.append((f"{root}/sun397/SUN397/{line[1:]}", cname2lab[category],
                          " ".join(category.split("/")[1:][::-1])))
        return items
    return (*split_trainval(read("Training_01.txt")), read("Testing_01.txt"))


def ucf_split(root):
    import re
    cname2lab = {c.split(" ")[1]: int(c.split(" ")[0]) - 1 for c in lines(f"{root}/ucf101/ucfTrainTestlist/classInd.txt")}

    def read(name):
        items = []
        for line in lines(f"{root}/ucf101/ucfTrainTestlist/{name}"):
            action, filename = line.split(" ")[0].split("/")
            renamed = "_".join(re.findall("[A-Z][^A-Z]*", action))
            items.append((f"{root}/ucf101/UCF-101-midframes/{renamed}/{filename.replace('.avi', '.jpg')}",
                          cname2lab[action], renamed))
        return items
    return (*split_trainval(read("trainlist01.txt")), read("testlist01.txt"))


def flowers_split(root):
    from scipy.io import loadmat
    with open(f"{root}/oxford_flowers/cat_to_name.json") as file:
        lab2cname = json.load(file)
    tracker = defaultdict(list)
    for i, label in enumerate(loadmat(f"{root}/oxford_flowers/imagelabels.mat")["labels"][0]):
        tracker[int(label)].append(f"{root}/oxford_flowers/jpg/image_{i + 1:05d}.jpg")
    train, val, test = [], [], []
    for label, impaths in tracker.items():
        random.shuffle(impaths)
        n_train, n_val = round(len(impaths) * 0.5), round(len(impaths) * 0.2)
        name = lab2cname[str(label)]
        train += [(p, label - 1, name) for p in impaths[:n_train]]
        val += [(p, label - 1, name) for p in impaths[n_train:n_train + n_val]]
        test += [(p, label - 1, name) for p in impaths[n_train + n_val:]]
    return train, val, test


def cars_split(root):
    from scipy.io import loadmat
    meta = loadmat(f"{root}/stanford_cars/devkit/cars_meta.mat")["class_names"][0]

    def read(folder, anno):
        items = []
        for annotation in loadmat(f"{root}/stanford_cars/{anno}")["annotations"][0]:
            label = int(annotation["class"][0, 0]) - 1
            *model, year = meta[label][0].split(" ")
            items.append((f"{root}/stanford_cars/{folder}/{annotation['fname'][0]}", label, " ".join([year, *model])))
        return items
    return (*split_trainval(read("cars_train", "devkit/cars_train_annos.mat")),
            read("cars_test", "cars_test_annos_withlabels.mat"))


CALTECH_IGNORED = ["BACKGROUND_Google", "Faces_easy"]
CALTECH_NAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
EUROSAT_NAMES = {"AnnualCrop": "Annual Crop Land", "Forest": "Forest",
                 "HerbaceousVegetation": "Herbaceous Vegetation Land", "Highway": "Highway or Road"}
COOP_SPLITS = {
    "Caltech101": lambda r: read_and_split_data(f"{r}/caltech-101/101_ObjectCategories", CALTECH_IGNORED, CALTECH_NAMES),
    "DescribableTextures": lambda r: read_and_split_data(f"{r}/dtd/images"),
    "EuroSAT": lambda r: read_and_split_data(f"{r}/eurosat/2750", new_cnames=EUROSAT_NAMES),
    "Food101": lambda r: read_and_split_data(f"{r}/food-101/images"),
    "OxfordPets": pets_split,
    "StanfordCars": cars_split,
    "OxfordFlowers": flowers_split,
    "SUN397": sun_split,
    "UCF101": ucf_split,
}


def as_tuples(items):
    return [(item.impath, item.label, item.classname) for item in items]


def load(root, name, **kwargs):
    return DATASET_REGISTRY.get(name)(dataset_cfg(str(root), name, **kwargs))


@pytest.mark.parametrize("name", list(COOP_SPLITS))
def test_generated_split_and_shots_equal_coops(tmp_path, listing, name):
    if name in ("StanfordCars", "OxfordFlowers"):
        pytest.importorskip("scipy")
    build_fixture(name, str(tmp_path), num_classes=4, images_per_class=12, with_split=False)
    expected = coop_flow(lambda: COOP_SPLITS[name](str(tmp_path)))
    dataset = load(tmp_path, name, num_shots=SHOTS, seed=SEED)
    assert as_tuples(dataset.train_x) == expected[0]
    assert as_tuples(dataset.val) == expected[1]
    assert as_tuples(dataset.test) == expected[2]


def imagenet_listing(image_dir, classnames, folders):
    return [
        (os.path.join(image_dir, folder, im), label, classnames[wnid])
        for label, (folder, wnid) in enumerate(folders)
        for im in listdir_nohidden(os.path.join(image_dir, folder))
    ]


def imagenet_classnames(path):
    return dict(line.split(" ", 1) for line in lines(path))


def test_imagenet_listing_and_shots_equal_coops(tmp_path, listing):
    build_fixture("ImageNet", str(tmp_path), num_classes=5, images_per_class=8)
    images = f"{tmp_path}/imagenet/images"
    classnames = imagenet_classnames(f"{tmp_path}/imagenet/classnames.txt")
    wnids = sorted(entry.name for entry in os.scandir(f"{images}/train") if entry.is_dir())
    train = imagenet_listing(f"{images}/train", classnames, [(w, w) for w in wnids])
    test = imagenet_listing(f"{images}/val", classnames, [(w, w) for w in wnids])
    random.seed(SEED)
    expected_train = fewshot(train, SHOTS)
    dataset = load(tmp_path, "ImageNet", num_shots=SHOTS, seed=SEED)
    assert as_tuples(dataset.train_x) == expected_train
    assert as_tuples(dataset.test) == test
    full = load(tmp_path, "ImageNet")  # from preprocessed.pkl now
    assert as_tuples(full.train_x) == train


VARIANTS = {  # name: (dataset folder, image folder, folders in label order from CoOp's rules)
    "ImageNetV2": ("imagenetv2", "imagenetv2-matched-frequency-format-val",
                   lambda image_dir, wnids: [(str(label), wnid) for label, wnid in enumerate(wnids)]),
    "ImageNetSketch": ("imagenet-sketch", "images",
                       lambda image_dir, wnids: [(f, f) for f in listdir_nohidden(image_dir, sort=True)]),
    "ImageNetA": ("imagenet-adversarial", "imagenet-a",
                  lambda image_dir, wnids: [(f, f) for f in listdir_nohidden(image_dir, sort=True) if f != "README.txt"]),
    "ImageNetR": ("imagenet-rendition", "imagenet-r",
                  lambda image_dir, wnids: [(f, f) for f in listdir_nohidden(image_dir, sort=True) if f != "README.txt"]),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_imagenet_variant_items_equal_coops(tmp_path, listing, name):
    build_fixture(name, str(tmp_path), num_classes=4, images_per_class=6)
    dataset_dir, image_subdir, folders_of = VARIANTS[name]
    image_dir = f"{tmp_path}/{dataset_dir}/{image_subdir}"
    classnames = imagenet_classnames(f"{tmp_path}/{dataset_dir}/classnames.txt")
    expected = imagenet_listing(image_dir, classnames, folders_of(image_dir, list(classnames)))
    assert as_tuples(load(tmp_path, name).test) == expected


def test_sorted_order_is_a_named_option(tmp_path, monkeypatch):
    """``DATASET.IMAGE_ORDER sorted`` lists names sorted whatever the file system's order."""
    scrambled = lambda path=".": sorted(REAL_LISTDIR(path), key=lambda n: hashlib.md5(n.encode()).hexdigest())  # noqa: E731
    monkeypatch.setattr(os, "listdir", scrambled)
    build_fixture("ImageNetSketch", str(tmp_path), num_classes=3, images_per_class=6)
    cfg = dataset_cfg(str(tmp_path), "ImageNetSketch")
    cfg.DATASET.IMAGE_ORDER = "sorted"
    items = as_tuples(DATASET_REGISTRY.get("ImageNetSketch")(cfg).test)
    assert items == sorted(items, key=lambda item: (item[1], item[0]))
    assert items != as_tuples(load(tmp_path, "ImageNetSketch").test)
    cfg.DATASET.IMAGE_ORDER = "by date"
    with pytest.raises(ValueError, match="DATASET.IMAGE_ORDER must be one of"):
        DATASET_REGISTRY.get("ImageNetSketch")(cfg)


def test_coops_imagenet_caches_are_read_and_ours_are_coops_format(tmp_path):
    """A ``preprocessed.pkl`` and a few-shot cache written as CoOp writes them fix the items; ours hold the
    same keys and ``Datum`` objects, so CoOp's loader reads them."""
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=6)
    ours = load(tmp_path, "ImageNet", num_shots=2, seed=1)
    dataset_dir = tmp_path / "imagenet"
    with open(dataset_dir / "preprocessed.pkl", "rb") as file:
        preprocessed = pickle.load(file)
    with open(dataset_dir / "split_fewshot" / "shot_2-seed_1.pkl", "rb") as file:
        shots = pickle.load(file)
    assert sorted(preprocessed) == ["test", "train"] and sorted(shots) == ["train"]
    assert as_tuples(shots["train"]) == as_tuples(ours.train_x)
    assert all(type(item) is Datum for item in preprocessed["train"] + preprocessed["test"])
    # CoOp's caches, in an order no listing gives: they win, as in CoOp
    coop_train, coop_test = preprocessed["train"][::-1], preprocessed["test"][::-1]
    with open(dataset_dir / "preprocessed.pkl", "wb") as file:
        pickle.dump({"train": coop_train, "test": coop_test}, file)
    with open(dataset_dir / "split_fewshot" / "shot_2-seed_1.pkl", "wb") as file:
        pickle.dump({"train": coop_train[:2]}, file)
    assert as_tuples(load(tmp_path, "ImageNet").test) == as_tuples(coop_test)
    assert as_tuples(load(tmp_path, "ImageNet", num_shots=2, seed=1).train_x) == as_tuples(coop_train[:2])


def test_sorted_order_also_sorts_a_cached_imagenet_listing(tmp_path):
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=5)
    listed = load(tmp_path, "ImageNet")
    with open(tmp_path / "imagenet" / "preprocessed.pkl", "wb") as file:  # a cache in an order no listing gives
        pickle.dump({"train": listed.train_x[::-1], "test": listed.test[::-1]}, file)
    cfg = dataset_cfg(str(tmp_path), "ImageNet")
    cfg.DATASET.IMAGE_ORDER = "sorted"
    dataset = DATASET_REGISTRY.get("ImageNet")(cfg)
    for got, cached in ((dataset.train_x, listed.train_x), (dataset.test, listed.test)):
        assert as_tuples(got) == sorted(as_tuples(cached), key=lambda item: (item[1], item[0]))
