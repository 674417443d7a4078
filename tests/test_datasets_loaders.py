"""Each dataset loader on a miniature of its on-disk layout: classes, CoOp's class names, split sizes."""
import json
import os

import pytest
from dassl.data.datasets import DATASET_REGISTRY

import datasets  # noqa: F401  (registers the datasets)
from datasets.fixtures import FIXTURE_BUILDERS, build_fixture, dataset_cfg

ALL_DATASETS = list(FIXTURE_BUILDERS)
# datasets whose split can be rebuilt from the original files when split_zhou_*.json is missing
REBUILDABLE = [
    "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "SUN397",
    "DescribableTextures", "EuroSAT", "UCF101",
]
NEEDS_SCIPY = {"StanfordCars", "OxfordFlowers"}
# names typed here from CoOp's split files, independent of the loaders' tables
COOP_SPELLINGS = {
    "Caltech101": ["face", "leopard", "motorbike", "airplane", "accordion"],
    "EuroSAT": ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road"],
    "SUN397": ["abbey", "outdoor apartment_building", "shop bakery"],
    "StanfordCars": ["2000 AM General Hummer SUV", "2012 Acura RL Sedan"],
    "UCF101": ["Apply_Eye_Makeup", "Apply_Lipstick", "Archery"],
    "OxfordPets": ["abyssinian", "american_bulldog", "bengal"],
    "ImageNet": ["tench", "goldfish", "great white shark"],
    "OxfordFlowers": ["pink primrose", "hard-leaved pocket orchid"],
}
NUM_CLASSES = 6


def load(root, name, **kwargs):
    return DATASET_REGISTRY.get(name)(dataset_cfg(str(root), name, **kwargs))


@pytest.mark.parametrize("name", ALL_DATASETS)
def test_loader_reads_its_layout(tmp_path, name):
    fixture = build_fixture(name, str(tmp_path), num_classes=NUM_CLASSES, images_per_class=10)
    dataset = load(tmp_path, name)
    assert dataset.num_classes == len(fixture.classnames) == NUM_CLASSES
    assert dataset.classnames == fixture.classnames
    sizes = {"train": len(dataset.train_x), "val": len(dataset.val or []), "test": len(dataset.test)}
    assert sizes == fixture.split_sizes
    assert all(os.path.isfile(item.impath) for item in dataset.train_x + dataset.test)
    labels_to_names = {(item.label, item.classname) for item in dataset.train_x + dataset.test}
    assert labels_to_names == set(enumerate(fixture.classnames))


@pytest.mark.parametrize("name", sorted(COOP_SPELLINGS))
def test_class_names_have_coops_spelling(tmp_path, name):
    build_fixture(name, str(tmp_path), num_classes=NUM_CLASSES, images_per_class=4)
    classnames = load(tmp_path, name).classnames
    for expected in COOP_SPELLINGS[name]:
        assert expected in classnames


@pytest.mark.parametrize("name", REBUILDABLE)
def test_missing_split_file_is_rebuilt_from_original_files(tmp_path, name):
    if name in NEEDS_SCIPY:
        pytest.importorskip("scipy")
    fixture = build_fixture(name, str(tmp_path), num_classes=NUM_CLASSES, images_per_class=10, with_split=False)
    dataset = load(tmp_path, name)
    assert dataset.classnames == fixture.classnames
    total = len(dataset.train_x) + len(dataset.val) + len(dataset.test)
    assert total == sum(fixture.split_sizes.values())
    assert {item.label for item in dataset.val} == set(range(NUM_CLASSES))
    split_file = next(f for f in os.listdir(fixture.dataset_dir) if f.startswith("split_zhou_"))
    with open(os.path.join(fixture.dataset_dir, split_file)) as file:
        split = json.load(file)
    assert sorted(split) == ["test", "train", "val"]
    relpath, label, classname = split["train"][0]
    assert not os.path.isabs(relpath) and classname == fixture.classnames[label]
    assert not [f for f in os.listdir(fixture.dataset_dir) if f.endswith(".tmp")]
    reread = load(tmp_path, name)  # now read from the written file
    assert [item.impath for item in reread.test] == [item.impath for item in dataset.test]


@pytest.mark.parametrize("name", sorted(NEEDS_SCIPY))
def test_rebuilding_without_scipy_says_scipy_is_needed(tmp_path, monkeypatch, name):
    build_fixture(name, str(tmp_path), num_classes=3, images_per_class=4, with_split=False)
    monkeypatch.setitem(__import__("sys").modules, "scipy.io", None)
    with pytest.raises(ImportError, match=r"needs scipy \(pip install scipy\)"):
        load(tmp_path, name)


@pytest.mark.parametrize("name", ["ImageNetA", "ImageNetR"])
def test_imagenet_a_and_r_map_their_subset_to_imagenet_labels(tmp_path, name):
    build_fixture(name, str(tmp_path), num_classes=4, images_per_class=4)
    dataset = load(tmp_path, name)
    classnames_file = os.path.join(dataset.dataset_dir, "classnames.txt")
    imagenet_names = [line.split(" ", 1)[1].strip() for line in open(classnames_file)]
    assert len(imagenet_names) == 9 and dataset.num_classes == 4
    assert dataset.imagenet_labels == [1, 3, 5, 7]
    for label, classname in enumerate(dataset.classnames):
        assert imagenet_names[dataset.imagenet_labels[label]] == classname
    assert dataset.classnames == ["goldfish", "tiger shark", "electric ray", "rooster"]
    assert dataset.train_x is dataset.test


def test_imagenet_variant_falls_back_to_imagenets_classnames_file(tmp_path, capsys):
    build_fixture("ImageNetSketch", str(tmp_path), num_classes=3, images_per_class=4)
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=4)
    os.remove(tmp_path / "imagenet-sketch" / "classnames.txt")
    assert load(tmp_path, "ImageNetSketch").classnames == ["tench", "goldfish", "great white shark"]
    assert "imagenet/classnames.txt" in capsys.readouterr().out


def test_imagenet_split_is_cached_and_val_is_test(tmp_path):
    build_fixture("ImageNet", str(tmp_path), num_classes=3, images_per_class=4)
    first = load(tmp_path, "ImageNet")
    cache = tmp_path / "imagenet" / "preprocessed.pkl"
    stamp = cache.stat().st_mtime_ns
    second = load(tmp_path, "ImageNet")
    assert cache.stat().st_mtime_ns == stamp
    assert [d.impath for d in second.test] == [d.impath for d in first.test]
    assert second.val is second.test


def test_dtd_accepts_the_archive_nested_layout(tmp_path):
    build_fixture("DescribableTextures", str(tmp_path), num_classes=3, images_per_class=4)
    os.makedirs(tmp_path / "dtd" / "dtd")
    os.rename(tmp_path / "dtd" / "images", tmp_path / "dtd" / "dtd" / "images")
    dataset = load(tmp_path, "DescribableTextures")
    assert dataset.num_classes == 3 and "/dtd/dtd/images/" in dataset.train_x[0].impath


def test_coop_static_methods_exist():
    from datasets.dtd import DescribableTextures
    from datasets.imagenet import ImageNet
    from datasets.oxford_pets import OxfordPets

    for method in ("read_split", "save_split", "split_trainval", "subsample_classes"):
        assert callable(getattr(OxfordPets, method))
    assert callable(DescribableTextures.read_and_split_data)
    assert callable(ImageNet.read_classnames)


def test_datamanager_builds_loaders_from_a_fixture(tmp_path):
    from dassl.data import DataManager

    build_fixture("EuroSAT", str(tmp_path), num_classes=4, images_per_class=10, image_size=40)
    cfg = dataset_cfg(str(tmp_path), "EuroSAT", num_shots=2)
    cfg.INPUT.SIZE = (32, 32)
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.NUM_WORKERS = 0
    dm = DataManager(cfg)
    batch = next(iter(dm.train_loader_x))
    assert batch["img"].shape == (4, 3, 32, 32)
    assert dm.num_classes == 4 and dm.lab2cname[0] == "Annual Crop Land"


def test_fixture_script_writes_layouts_a_loader_reads(tmp_path):
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(repo, "third_party"), repo]))
    result = subprocess.run(
        [sys.executable, "-m", "datasets.fixtures", "--out", str(tmp_path), "--datasets", "UCF101",
         "--num-classes", "3", "--corpus-size", "6"],
        capture_output=True, text=True, env=env, cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    assert "UCF101" in result.stdout and "corpus (tar)" in result.stdout
    assert load(tmp_path, "UCF101").classnames == ["Apply_Eye_Makeup", "Apply_Lipstick", "Archery"]
    assert sorted(os.listdir(tmp_path / "corpus_tar" / "shards")) == ["0000.tar"]
